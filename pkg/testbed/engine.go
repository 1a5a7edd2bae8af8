package testbed

import (
	"context"
	"fmt"

	"github.com/netconform/netconform/internal/run"
)

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
