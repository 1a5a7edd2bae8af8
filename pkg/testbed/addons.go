package testbed

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/pkg/addons"
	"github.com/netconform/netconform/pkg/cluster"
)

// buildAddons builds the add-ons' images into the cache (or finds them
// there); installAddons then takes them from it.
func buildAddons(ctx context.Context, list []addons.Addon, log *os.File) error {
	for _, a := range list {
		if _, err := a.Images(ctx, log); err != nil {
			return fmt.Errorf("building %s images: %w", a.Name(), err)
		}
	}
	return nil
}

// installAddons loads the add-ons' images into every node, installs them
// in order and waits until each works.
func installAddons(ctx context.Context, k *cluster.Kind, list []addons.Addon, log *os.File, net *cluster.NetworkInfo, slot int, info *Info) error {
	for _, a := range list {
		err := progress.Step("add-on "+a.Name()+" (build log: "+log.Name()+")", func() error {
			imgs, err := a.Images(ctx, log)
			if err != nil {
				return fmt.Errorf("building %s images: %w", a.Name(), err)
			}
			if err := k.LoadArchives(ctx, imgs...); err != nil {
				return err
			}
			if err := a.Install(ctx, k.GetKubeconfig(), addons.Params{KindNetworkSubnet: net.Subnet, PoolSlot: slot}); err != nil {
				return fmt.Errorf("installing %s: %w", a.Name(), err)
			}
			rctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
			defer cancel()
			return a.Ready(rctx, k.GetKubeconfig())
		})
		if err != nil {
			return err
		}
		info.Addons = append(info.Addons, a.Name())
	}
	return nil
}
