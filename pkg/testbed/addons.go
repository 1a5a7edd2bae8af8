package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/pkg/addons"
	"github.com/netconform/netconform/pkg/cluster"
	"github.com/netconform/netconform/pkg/nodeimage"
)

// installAddons builds (or takes from the cache) the cell's add-ons, loads
// their images into every node, installs them and waits until they work.
func installAddons(ctx context.Context, k *cluster.Kind, names []string, net *cluster.NetworkInfo, slot int, info *Info) error {
	list, err := addons.InOrder(names)
	if err != nil {
		return err
	}
	logPath := filepath.Join(nodeimage.CacheDir(), "logs", "addons.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	for _, a := range list {
		a := a
		err := progress.Step("add-on "+a.Name()+" (build log: "+logPath+")", func() error {
			imgs, err := a.Images(ctx, logf)
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
