package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/pkg/cluster"
)

// ProbeImageEnv names a probe image the user pushed where their cluster can
// pull it (for clusters that are not kind clusters on this host).
const ProbeImageEnv = "NETPROBE_IMAGE"

// Attach describes a cluster the user brings (KUBECONFIG) without creating
// or changing anything but the suites' own namespaces. It fails fast when
// the API server cannot be reached. A kind cluster on this host gets the
// probe image loaded into its nodes; any other cluster needs NETPROBE_IMAGE.
//
// config (CLUSTER_CONFIG) declares which matrix cell the cluster is, so the
// cell's known failures apply; without it a kind cluster that carries a
// cell's default name (made by `make cluster`) is taken to be that cell.
func Attach(ctx context.Context, kubeconfig, config, engine, repoRoot string) (*Info, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("KUBECONFIG=%s cannot be loaded: %w", kubeconfig, err)
	}
	cfg.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("the cluster in KUBECONFIG=%s is unreachable (API server %s): %w; check the file, that the cluster is running, and that this host can reach it", kubeconfig, cfg.Host, err)
	}
	if len(nodes.Items) == 0 {
		return nil, fmt.Errorf("the cluster in KUBECONFIG=%s has no nodes", kubeconfig)
	}
	abs, _ := filepath.Abs(kubeconfig)
	info := &Info{Kubeconfig: abs, Engine: engine, ProxyMode: DetectProxyMode(ctx, cs)}
	// kind nodes carry providerID kind://<engine>/<cluster>/<node>.
	if pid := nodes.Items[0].Spec.ProviderID; strings.HasPrefix(pid, "kind://") {
		parts := strings.Split(strings.TrimPrefix(pid, "kind://"), "/")
		if len(parts) == 3 {
			info.KindCluster, info.Engine = parts[1], parts[0]
		}
	}
	if img := os.Getenv(ProbeImageEnv); img != "" {
		info.ProbeImage = img
	}
	var k *cluster.Kind
	if info.KindCluster != "" {
		k = cluster.NewKind(info.KindCluster, info.Engine, StateDir(repoRoot))
		if exists, err := k.Exists(); err != nil || !exists {
			info.KindCluster = "" // a kind cluster, but not on this host's engine
		}
	}
	if info.KindCluster != "" {
		net := cluster.KindNetwork(os.Getenv)
		if n, err := cluster.InspectNetwork(ctx, info.Engine, net); err == nil {
			info.Network, info.NetworkSubnet, info.NetworkGateway, info.Isolated = n.Name, n.Subnet, n.Gateway, n.Isolated
		}
		if info.ProbeImage == "" {
			tag, err := loadProbe(ctx, k, repoRoot)
			if err != nil {
				return nil, err
			}
			info.ProbeImage = tag
		}
	}
	if err := declareCell(info, repoRoot, config); err != nil {
		return nil, err
	}
	if info.ProbeImage == "" {
		return nil, fmt.Errorf("the cluster in KUBECONFIG=%s is not a kind cluster on this host, so netconform cannot load its probe image into it: "+
			"build it (go run ./cmd/netconform probe-image), push it to a registry the cluster can pull from, and set %s=<that reference>", kubeconfig, ProbeImageEnv)
	}
	progress.Printf("using the cluster in KUBECONFIG=%s (%d nodes, kube-proxy mode %q); netconform creates nothing but its test namespaces", abs, len(nodes.Items), info.ProxyMode)
	return info, nil
}

// declareCell records the matrix cell an attached cluster stands for: the
// one config names, else the cell whose default cluster name the kind
// cluster carries; none for any other cluster.
func declareCell(info *Info, repoRoot, config string) error {
	var cell *cluster.Cell
	if config != "" {
		c, err := LoadCell(repoRoot, config)
		if err != nil {
			return fmt.Errorf("CLUSTER_CONFIG=%s (declaring which cell the KUBECONFIG cluster is): %w", config, err)
		}
		cell = c
		progress.Printf("CLUSTER_CONFIG=%s declares the KUBECONFIG cluster to be cell %s: its known failures apply", config, c.Name)
	} else if info.KindCluster != "" {
		m, err := cluster.LoadMatrix(filepath.Join(repoRoot, "clusters"))
		if err != nil {
			return err
		}
		for _, c := range m.Cells {
			if ClusterName(c.Name) == info.KindCluster {
				cell = c
				progress.Printf("kind cluster %s is the default cluster of cell %s: its known failures apply (set CLUSTER_CONFIG to declare another cell)", info.KindCluster, c.Name)
				break
			}
		}
	}
	if cell == nil {
		return nil
	}
	info.Cell = cell.Name
	info.KnownFailures = cell.KnownFailures
	if info.ProxyMode != "" && cell.ProxyMode != "" && info.ProxyMode != cell.ProxyMode {
		progress.Printf("warning: cell %s runs kube-proxy in %s mode but this cluster's kube-proxy is in %s mode", cell.Name, cell.ProxyMode, info.ProxyMode)
	}
	return nil
}

// DetectProxyMode reads kube-proxy's configured mode from the kube-proxy
// ConfigMap kubeadm writes ("" when there is none, e.g. a kube-proxy
// replacement). An empty mode in the config means iptables on Linux.
func DetectProxyMode(ctx context.Context, cs kubernetes.Interface) string {
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(cm.Data["config.conf"], "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == "mode" {
			v = strings.Trim(strings.TrimSpace(v), `"'`)
			if v == "" {
				return "iptables"
			}
			return v
		}
	}
	return "iptables"
}
