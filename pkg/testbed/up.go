package testbed

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/pkg/addons"
	"github.com/netconform/netconform/pkg/cluster"
	"github.com/netconform/netconform/pkg/host"
	"github.com/netconform/netconform/pkg/nodeimage"
)

// Options for Up.
type Options struct {
	RepoRoot string
	Config   string // CLUSTER_CONFIG: a cell's kind config
	Name     string // cluster name; default from the cell
	Engine   string // docker or podman
	Offline  bool   // build node images even when upstream ones could be pulled
}

// StateDir holds per-cluster kubeconfigs and config hashes.
func StateDir(repoRoot string) string { return filepath.Join(repoRoot, "_output", "clusters") }

// ClusterName derives a kind cluster name from a cell: v1.34/iptables →
// netconform-v1-34-iptables.
func ClusterName(cell string) string {
	r := strings.NewReplacer("/", "-", ".", "-", "_", "-")
	return "netconform-" + r.Replace(cell)
}

// LoadCell finds the cell for a config path (or the default cell when empty).
func LoadCell(repoRoot, config string) (*cluster.Cell, error) {
	m, err := cluster.LoadMatrix(filepath.Join(repoRoot, "clusters"))
	if err != nil {
		return nil, err
	}
	if config == "" {
		c, err := m.Default("iptables", HostHas)
		if err != nil {
			return nil, err
		}
		progress.Printf("CLUSTER_CONFIG not set: using the newest cell that runs here in iptables mode, clusters/%s", c.Config)
		return c, nil
	}
	return m.Lookup(config)
}

// HostHas reports host features cells may require.
func HostHas(feature string) bool {
	switch feature {
	case "ipvs":
		_, err := os.Stat("/proc/net/ip_vs")
		return err == nil
	}
	return false
}

// Up creates (or reuses) the cluster for a cell, with its add-ons and the
// probe image loaded, and returns its description.
func Up(ctx context.Context, o Options) (*Info, error) {
	cell, err := LoadCell(o.RepoRoot, o.Config)
	if err != nil {
		return nil, err
	}
	if why := cell.Unsupported(HostHas); why != "" {
		return nil, fmt.Errorf("%s (kube-proxy's ipvs mode needs the ip_vs kernel module); run an iptables or nftables cell here", why)
	}
	name := o.Name
	if name == "" {
		name = ClusterName(cell.Name)
	}
	rep, err := host.Ensure(ctx, o.Engine, o.RepoRoot)
	if err != nil {
		return nil, err
	}
	addonNames := cell.Addons
	if cell.CNI != "" && cell.CNI != "podnet" {
		// The cell's CNI is an add-on, installed first.
		addonNames = append([]string{cell.CNI}, addonNames...)
	}
	addonList, err := addons.InOrder(addonNames)
	if err != nil {
		return nil, err
	}
	logf, err := nodeimage.CreateLog(cell.Kubernetes)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// One add-on log per cluster: runs for several cells may overlap.
	addonLog, err := os.Create(filepath.Join(filepath.Dir(logf.Name()), "addons-"+name+".log"))
	if err != nil {
		return nil, err
	}
	defer addonLog.Close()
	// Add-on images do not depend on the node image: on a cold cache they
	// are built alongside it, so a run waits for the longer of the two
	// builds rather than their sum.
	type built struct {
		archives [][]string
		err      error
	}
	addonsBuilt := make(chan built, 1)
	go func() {
		a, err := buildAddons(ctx, addonList, addonLog)
		addonsBuilt <- built{a, err}
	}()
	img, err := nodeimage.Ensure(ctx, nodeimage.Options{Version: cell.Kubernetes, Engine: o.Engine, RepoRoot: o.RepoRoot,
		Shim: rep.ShimNeeded, Offline: o.Offline, Log: logf})
	if err != nil {
		return nil, fmt.Errorf("%w\n(build log: %s)", err, logf.Name())
	}
	netName := cluster.KindNetwork(os.Getenv)
	var netInfo *cluster.NetworkInfo
	if img.Upstream {
		progress.Printf("node image %s from its registry: keeping kind's normal network", img.Image)
	} else if netInfo, err = cluster.EnsureIsolatedNetwork(ctx, o.Engine, netName); err != nil {
		return nil, err
	}
	k := cluster.NewKind(name, o.Engine, StateDir(o.RepoRoot)).WithNodeImage(img.Image, img.KubeadmPatches)
	if cell.CNI != "" && cell.CNI != "podnet" {
		// The cell's CNI is an add-on (kind's default CNI is disabled): no
		// node can be Ready before it is installed, so kind must not wait.
		k.WithWaitForReady(0)
	}
	if err := progress.Step(fmt.Sprintf("cluster %s (%s, Kubernetes %s, %s)", name, cell.Name, cell.Kubernetes, cell.ProxyMode), func() error {
		_, err := k.CreateWithConfig(ctx, cell.Path)
		return err
	}); err != nil {
		return nil, err
	}
	if netInfo == nil {
		if netInfo, err = cluster.InspectNetwork(ctx, o.Engine, netName); err != nil {
			return nil, err
		}
	}
	probeTag, err := loadProbe(ctx, k, o.RepoRoot)
	if err != nil {
		return nil, err
	}
	info := &Info{
		Kubeconfig: k.GetKubeconfig(), Cell: cell.Name, Owned: true, KindCluster: name, Engine: o.Engine,
		Network: netInfo.Name, NetworkSubnet: netInfo.Subnet, NetworkGateway: netInfo.Gateway, Isolated: netInfo.Isolated,
		ProbeImage: probeTag, NodeImage: img.Image, NodeUpstream: img.Upstream, ProxyMode: cell.ProxyMode,
		KnownFailures: cell.KnownFailures, Reused: k.Reused(),
	}
	b := <-addonsBuilt
	if b.err != nil {
		return nil, fmt.Errorf("%w\n(build log: %s; cluster %s is left running: make cluster-delete CLUSTER_CONFIG=clusters/%s)", b.err, addonLog.Name(), name, cell.Config)
	}
	if err := installAddons(ctx, k, addonList, b.archives, netInfo, poolSlot(cell.Index, o.Name), info); err != nil {
		return nil, fmt.Errorf("%w\n(cluster %s is left running for inspection: KUBECONFIG=%s; remove it with make cluster-delete CLUSTER_CONFIG=clusters/%s)", err, name, k.GetKubeconfig(), cell.Config)
	}
	if err := progress.Step("waiting for nodes, kube-proxy, CNI and CoreDNS", func() error {
		return cluster.WaitReady(ctx, k.KubernetesRestConfig(), 5*time.Minute)
	}); err != nil {
		return nil, err
	}
	return info, nil
}

// Down deletes the cluster for a cell (or name).
func Down(ctx context.Context, o Options) error {
	name := o.Name
	if name == "" {
		cell, err := LoadCell(o.RepoRoot, o.Config)
		if err != nil {
			return err
		}
		name = ClusterName(cell.Name)
	}
	k := cluster.NewKind(name, o.Engine, StateDir(o.RepoRoot))
	exists, err := k.Exists()
	if err != nil {
		return err
	}
	if !exists {
		progress.Printf("no cluster %s to delete", name)
		_ = os.RemoveAll(filepath.Join(StateDir(o.RepoRoot), name))
		return nil
	}
	return progress.Step("deleting cluster "+name, func() error { return k.Destroy(ctx) })
}

// poolSlot keeps the MetalLB pools of clusters sharing the kind network
// apart: a cell's default cluster uses the cell's index; a cluster with a
// chosen name (CLUSTER_NAME) a slot derived from the name, above the cells'.
func poolSlot(cellIndex int, name string) int {
	if name == "" {
		return cellIndex
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return 32 + int(h.Sum32()%64)
}
