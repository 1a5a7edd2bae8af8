package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/netconform/netconform/internal/run"
)

func execOutput(ctx context.Context, name string, args ...string) ([]byte, error) {
	return run.Command(name, args...).Output(ctx)
}

// NodeExec runs a command in a node container and returns its output.
func NodeExec(n nodes.Node, args ...string) (string, error) {
	var out, errb bytes.Buffer
	if err := n.Command(args[0], args[1:]...).SetStdout(&out).SetStderr(&errb).Run(); err != nil {
		return out.String(), fmt.Errorf("on node %s: %s: %w: %s", n.String(), strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// LoadArchives imports image archives into every node's containerd, the
// nodes in parallel.
func (k *Kind) LoadArchives(ctx context.Context, archives ...string) error {
	ns, err := k.Nodes()
	if err != nil {
		return err
	}
	g, _ := errgroup.WithContext(ctx)
	for _, n := range ns {
		n := n
		g.Go(func() error {
			for _, a := range archives {
				f, err := os.Open(a)
				if err != nil {
					return err
				}
				err = nodeutils.LoadImageArchive(n, f)
				f.Close()
				if err != nil {
					return fmt.Errorf("loading %s into node %s: %w", a, n, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// LoadImage implements e2e-framework's image loader: an image in the local
// engine is saved and imported into every node.
func (k *Kind) LoadImage(ctx context.Context, image string, _ ...string) error {
	tmp, err := os.CreateTemp("", "netconform-image-*.tar")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := run.Command(k.engine, "save", "-o", tmp.Name(), image).Run(ctx); err != nil {
		return fmt.Errorf("saving %s from %s: %w", image, k.engine, err)
	}
	return k.LoadArchives(ctx, tmp.Name())
}
