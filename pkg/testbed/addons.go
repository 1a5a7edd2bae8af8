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
// there) and returns each add-on's image archives, in list order, for
// installAddons.
func buildAddons(ctx context.Context, list []addons.Addon, log *os.File) ([][]string, error) {
	archives := make([][]string, len(list))
	for i, a := range list {
		imgs, err := a.Images(ctx, log)
		if err != nil {
			return nil, fmt.Errorf("building %s images: %w", a.Name(), err)
		}
		archives[i] = imgs
	}
	return archives, nil
}

// installAddons loads the add-ons' images (archives, as buildAddons
// returned them) into every node, installs the add-ons in order and waits
// until each works.
func installAddons(ctx context.Context, k *cluster.Kind, list []addons.Addon, archives [][]string, net *cluster.NetworkInfo, slot int, info *Info) error {
	for i, a := range list {
		err := progress.Step("add-on "+a.Name(), func() error {
			if err := k.LoadArchives(ctx, archives[i]...); err != nil {
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
