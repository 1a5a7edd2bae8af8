package podnet

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// Controller keeps a node's CNI config, routes and masquerade rules in line
// with the cluster's Nodes.
type Controller struct {
	Client    kubernetes.Interface
	NodeName  string
	PodSubnet []string // the cluster's pod subnets: not masqueraded
	MTU       int
	Dataplane Dataplane
	ConfPath  string
	// ReadyFile exists while the last reconcile succeeded; the DaemonSet's
	// readiness probe checks it, so a node whose routes or masquerade
	// failed shows as not ready instead of only logging.
	ReadyFile string
}

func markReady(path string, ok bool) {
	if path == "" {
		return
	}
	if ok {
		_ = os.WriteFile(path, []byte("ok\n"), 0o644)
	} else {
		_ = os.Remove(path)
	}
}

// Run reconciles on every Node change and at least every resync period.
func (c *Controller) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(c.Client, 30*time.Second)
	nodes := factory.Core().V1().Nodes()
	trigger := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	if _, err := nodes.Informer().AddEventHandler(handler{poke}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	ticker := time.NewTicker(30 * time.Second)
	defer ticker.Stop()
	for {
		list, err := nodes.Lister().List(labels.Everything())
		if err == nil {
			err = c.reconcile(ctx, list)
		}
		if err != nil {
			log.Printf("podnet: %v (retrying)", err)
		}
		markReady(c.ReadyFile, err == nil)
		select {
		case <-ctx.Done():
			return nil
		case <-trigger:
		case <-ticker.C:
		}
	}
}

func (c *Controller) reconcile(ctx context.Context, nodes []*corev1.Node) error {
	var self *corev1.Node
	for _, n := range nodes {
		if n.Name == c.NodeName {
			self = n
		}
	}
	if self == nil {
		return fmt.Errorf("node %s not found", c.NodeName)
	}
	cidrs := self.Spec.PodCIDRs
	if len(cidrs) == 0 && self.Spec.PodCIDR != "" {
		cidrs = []string{self.Spec.PodCIDR}
	}
	conf, err := Conflist(cidrs, c.MTU)
	if err != nil {
		return err
	}
	if changed, err := WriteIfChanged(c.ConfPath, conf); err != nil {
		return fmt.Errorf("writing %s: %w", c.ConfPath, err)
	} else if changed {
		log.Printf("podnet: wrote %s for %v", c.ConfPath, cidrs)
	}
	routes := RoutesFor(c.NodeName, nodes)
	if err := c.Dataplane.SyncRoutes(ctx, routes); err != nil {
		return err
	}
	return c.Dataplane.SyncMasquerade(ctx, c.PodSubnet)
}

type handler struct{ poke func(any) }

func (h handler) OnAdd(obj any, _ bool) { h.poke(obj) }
func (h handler) OnUpdate(_, obj any)   { h.poke(obj) }
func (h handler) OnDelete(obj any)      { h.poke(obj) }
