package addons

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/netconform/netconform/pkg/nodeimage"
)

// MetalLB pins: v0.15.2 is the newest release whose module builds from the
// Go module proxy alone (v0.16.x needs a module the proxy does not serve).
const (
	MetalLBVersion = "v0.15.2"
	metallbModule  = "go.universe.tf/metallb"
	// metallbManifest is the upstream manifest for layer 2 (no FRR), read
	// from the module source so that this repository never carries a copy
	// that could drift from the binaries.
	metallbManifest = "config/manifests/metallb-native.yaml"

	// MetalLBNamespace is where the upstream manifest installs MetalLB.
	MetalLBNamespace = "metallb-system"
	// MetalLBPool names the IPAddressPool and L2Advertisement Install adds.
	MetalLBPool = "netconform"
)

// Install waits: CRDs are established within seconds; the pool can only be
// created once the controller (which serves the validating webhook) runs
// and has patched its CA bundle into the webhook configuration, which on a
// loaded two-core host takes a minute or more.
var (
	metallbCRDTimeout   = 2 * time.Minute
	metallbPoolTimeout  = 5 * time.Minute
	metallbReadyTimeout = 5 * time.Minute
)

//go:embed manifests/metallb-pool.yaml
var metallbPoolTemplate string

type metallb struct{}

// MetalLB is the layer-2 load balancer add-on: a controller Deployment that
// assigns LoadBalancer addresses from a pool carved out of the kind network,
// and a speaker DaemonSet that answers ARP for them.
func MetalLB() Addon { return metallb{} }

func (metallb) Name() string { return "metallb" }

// metallbImages maps the images metallb-native.yaml names to ours.
func metallbImages() map[string]string {
	return map[string]string{
		"quay.io/metallb/controller:" + MetalLBVersion: Registry + "/metallb-controller:" + MetalLBVersion,
		"quay.io/metallb/speaker:" + MetalLBVersion:    Registry + "/metallb-speaker:" + MetalLBVersion,
	}
}

// metallbBuild builds controller and speaker; the upstream images put them
// at /controller and /speaker as entrypoints, and the manifest only gives
// args, so ours do the same. The speaker in layer 2 mode runs nothing but
// itself (FRR and its helper tools are for BGP mode), so it needs no
// userland either.
func metallbBuild() build {
	return build{
		Name: "metallb",
		Module: nodeimage.GoModule{
			Path:    metallbModule,
			Version: MetalLBVersion,
			Mains:   []string{metallbModule + "/controller", metallbModule + "/speaker"},
		},
		Images: []binaryImage{
			{Tag: Registry + "/metallb-controller:" + MetalLBVersion, Binary: "controller", Path: "/controller", Title: "controller"},
			{Tag: Registry + "/metallb-speaker:" + MetalLBVersion, Binary: "speaker", Path: "/speaker", Title: "speaker"},
		},
	}
}

func (metallb) Images(ctx context.Context, log io.Writer) ([]string, error) {
	return metallbBuild().archives(ctx, log)
}

// MetalLBObjects returns the upstream manifest's objects from the module
// source, with our images and pull policy, in the manifest's order.
func MetalLBObjects(ctx context.Context) ([]*unstructured.Unstructured, error) {
	dir, err := nodeimage.ModuleDir(ctx, metallbModule, MetalLBVersion, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the MetalLB manifest: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, metallbManifest))
	if err != nil {
		return nil, fmt.Errorf("reading the MetalLB manifest from %s@%s: %w", metallbModule, MetalLBVersion, err)
	}
	return renderMetalLB(data)
}

// renderMetalLB decodes metallb-native.yaml and points it at our images.
func renderMetalLB(native []byte) ([]*unstructured.Unstructured, error) {
	objs, err := decodeManifest(native)
	if err != nil {
		return nil, fmt.Errorf("decoding %s of %s@%s: %w", metallbManifest, metallbModule, MetalLBVersion, err)
	}
	if err := setImages(objs, metallbImages()); err != nil {
		return nil, fmt.Errorf("%s of %s@%s: %w", metallbManifest, metallbModule, MetalLBVersion, err)
	}
	return objs, nil
}

// MetalLBPoolObjects renders the IPAddressPool and L2Advertisement for a
// kind network.
func MetalLBPoolObjects(subnet netip.Prefix, slot int) ([]*unstructured.Unstructured, error) {
	addrs, err := PoolAddresses(subnet, slot)
	if err != nil {
		return nil, err
	}
	return renderTemplate("metallb-pool.yaml", metallbPoolTemplate, struct{ Pool, Namespace, Addresses string }{MetalLBPool, MetalLBNamespace, addrs})
}

func (metallb) Install(ctx context.Context, kubeconfig string, p Params) error {
	objs, err := MetalLBObjects(ctx)
	if err != nil {
		return err
	}
	pool, err := MetalLBPoolObjects(p.KindNetworkSubnet, p.PoolSlot)
	if err != nil {
		return err
	}
	k, err := connect(kubeconfig)
	if err != nil {
		return err
	}
	if err := k.applyAll(ctx, objs); err != nil {
		return fmt.Errorf("installing MetalLB: %w", err)
	}
	if err := k.waitEstablished(ctx, ofKind(objs, "CustomResourceDefinition"), metallbCRDTimeout); err != nil {
		return fmt.Errorf("installing MetalLB: %w", err)
	}
	if err := k.applyRetrying(ctx, pool, metallbPoolTimeout); err != nil {
		// The usual cause is a controller that never came up; say why.
		if werr := k.waitWorkloads(ctx, time.Second, metallbWorkloads()[0]); werr != nil {
			err = fmt.Errorf("%w\n%v", err, werr)
		}
		return fmt.Errorf("installing MetalLB's address pool (the controller serves the webhook that admits it): %w", err)
	}
	return nil
}

func metallbWorkloads() []workload {
	return []workload{
		{Kind: "Deployment", Namespace: MetalLBNamespace, Name: "controller"},
		{Kind: "DaemonSet", Namespace: MetalLBNamespace, Name: "speaker"},
	}
}

func (metallb) Ready(ctx context.Context, kubeconfig string) error {
	k, err := connect(kubeconfig)
	if err != nil {
		return err
	}
	if err := k.waitWorkloads(ctx, metallbReadyTimeout, metallbWorkloads()...); err != nil {
		return fmt.Errorf("the MetalLB add-on is not ready: %w", err)
	}
	return nil
}
