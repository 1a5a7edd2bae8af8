package testbed

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/internal/run"
	"github.com/netconform/netconform/pkg/cluster"
	"github.com/netconform/netconform/pkg/nodeimage"
	"github.com/netconform/netconform/pkg/probe/probeimage"
)

// loadProbe builds the probe image (or takes it from the cache) and loads
// it into every node of k and into the engine (for the external client);
// it returns the image's tag.
func loadProbe(ctx context.Context, k *cluster.Kind, repoRoot string) (string, error) {
	probe, err := probeimage.Build(ctx, probeimage.Options{Dir: filepath.Join(nodeimage.CacheDir(), "probe"), ModuleDir: repoRoot})
	if err != nil {
		return "", fmt.Errorf("building the probe image: %w", err)
	}
	err = progress.Step("loading the probe image "+probe.Tag+" into the nodes of "+k.Name()+" and "+k.Engine(), func() error {
		if err := k.LoadArchives(ctx, probe.Archive); err != nil {
			return err
		}
		return loadIntoEngine(ctx, k.Engine(), probe.Archive, probe.Tag)
	})
	return probe.Tag, err
}

// loadIntoEngine loads an image archive into the host's engine (for the
// external client container) unless the tag is already there.
func loadIntoEngine(ctx context.Context, engine, archive, tag string) error {
	if run.Command(engine, "image", "inspect", tag).Run(ctx) == nil {
		return nil
	}
	if err := run.Command(engine, "load", "-i", archive).Run(ctx); err != nil {
		return fmt.Errorf("loading %s into %s: %w", archive, engine, err)
	}
	return nil
}
