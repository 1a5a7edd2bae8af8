package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/netconform/netconform/internal/run"
)

// On an --internal engine network, the engine publishes no ports, so kind's
// last step — writing a kubeconfig for 127.0.0.1:<published port> — fails
// after the cluster is fully up (kind keeps the nodes: only its actions, not
// the kubeconfig export, remove them on failure). The host still reaches
// the nodes directly on that network, and kubeadm puts the control plane's
// address in the API server certificate, so the kubeconfig can name
// https://<control-plane IP>:6443 instead.

// isUnpublishedPortError reports kind's failure to find the API server's
// published port.
func isUnpublishedPortError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "failed to get api server port")
}

// writeDirectKubeconfig writes the cluster admin kubeconfig with the
// control plane's address on the engine network.
func (k *Kind) writeDirectKubeconfig(ctx context.Context) error {
	ns, err := k.Nodes()
	if err != nil {
		return err
	}
	cps, err := nodeutils.ControlPlaneNodes(ns)
	if err != nil || len(cps) == 0 {
		return fmt.Errorf("finding the control plane of %s: %v", k.name, err)
	}
	cp := cps[0]
	ip, err := nodeIPv4(ctx, k.engine, cp)
	if err != nil {
		return err
	}
	admin, err := NodeExec(cp, "cat", "/etc/kubernetes/admin.conf")
	if err != nil {
		return err
	}
	cfg, err := clientcmd.Load([]byte(admin))
	if err != nil {
		return fmt.Errorf("reading admin.conf of %s: %w", k.name, err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + ip + ":6443"
	}
	// Name things as kind does, so the file reads like any kind kubeconfig.
	ctxName := k.GetKubectlContext()
	for name, c := range cfg.Contexts {
		delete(cfg.Contexts, name)
		cfg.Contexts[ctxName] = c
	}
	cfg.CurrentContext = ctxName
	if err := os.MkdirAll(filepath.Dir(k.GetKubeconfig()), 0o755); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*cfg, k.GetKubeconfig())
}

// nodeIPv4 is a node container's IPv4 address on its network.
func nodeIPv4(ctx context.Context, engine string, n nodes.Node) (string, error) {
	out, err := run.Command(engine, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", n.String()).Output(ctx)
	if err != nil {
		return "", fmt.Errorf("inspecting node %s: %w", n, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return "", fmt.Errorf("node %s has no IPv4 address", n)
	}
	return f[0], nil
}
