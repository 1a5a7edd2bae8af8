package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/pkg/types"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kind "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindcmd "sigs.k8s.io/kind/pkg/cmd"
	"sigs.k8s.io/yaml"

	"github.com/netconform/netconform/internal/progress"
)

// Kind is a kind cluster managed through the kind Go library. It implements
// e2e-framework's types.E2EClusterProvider.
type Kind struct {
	name       string
	engine     string // docker or podman
	image      string // node image for every node
	patches    []string
	stateDir   string // holds kubeconfig and the config hash
	restConfig *rest.Config
	provider   *kind.Provider
	reused     bool
	// waitReady is how long create waits for the control plane to be Ready.
	waitReady time.Duration
}

// Reused reports whether the last create found the cluster already there.
func (k *Kind) Reused() bool { return k.reused }

var _ types.E2EClusterProvider = (*Kind)(nil)

// NewKind makes a provider for the named cluster. stateDir is where its
// kubeconfig lives (never the user's ~/.kube/config).
func NewKind(name, engine, stateDir string) *Kind {
	k := &Kind{name: name, engine: engine, stateDir: filepath.Join(stateDir, name), waitReady: 4 * time.Minute}
	return k.SetDefaults().(*Kind)
}

// WithWaitForReady sets how long create waits for the control plane node to
// be Ready (4 minutes unless set). 0 does not wait: a cluster made without
// kind's default CNI cannot have a Ready node before its CNI is installed.
func (k *Kind) WithWaitForReady(d time.Duration) *Kind {
	k.waitReady = d
	return k
}

// WithNodeImage sets the node image and the kubeadm patches it needs.
func (k *Kind) WithNodeImage(image string, kubeadmPatches []string) *Kind {
	k.image, k.patches = image, kubeadmPatches
	return k
}

func (k *Kind) SetDefaults() types.E2EClusterProvider {
	opt := kind.ProviderWithDocker()
	if k.engine == "podman" {
		opt = kind.ProviderWithPodman()
	}
	k.provider = kind.NewProvider(opt, kind.ProviderWithLogger(kindcmd.NewLogger()))
	return k
}

func (k *Kind) WithName(name string) types.E2EClusterProvider {
	k.stateDir = filepath.Join(filepath.Dir(k.stateDir), name)
	k.name = name
	return k
}

// WithVersion is accepted for the interface; the node image decides the
// Kubernetes version (see WithNodeImage).
func (k *Kind) WithVersion(string) types.E2EClusterProvider { return k }

// WithPath is accepted for the interface; no kind binary is used.
func (k *Kind) WithPath(string) types.E2EClusterProvider { return k }

func (k *Kind) WithOpts(opts ...types.ClusterOpts) types.E2EClusterProvider {
	for _, o := range opts {
		o(k)
	}
	return k
}

// Name is the cluster's name.
func (k *Kind) Name() string { return k.name }

// Engine is the node provider's engine binary.
func (k *Kind) Engine() string { return k.engine }

// GetKubeconfig returns the path of the cluster's own kubeconfig file.
func (k *Kind) GetKubeconfig() string { return filepath.Join(k.stateDir, "kubeconfig") }

func (k *Kind) GetKubectlContext() string { return "kind-" + k.name }

func (k *Kind) hashPath() string { return filepath.Join(k.stateDir, "config-hash") }

// Exists reports whether kind knows a cluster of this name.
func (k *Kind) Exists() (bool, error) {
	names, err := k.provider.List()
	if err != nil {
		return false, fmt.Errorf("listing kind clusters (is the %s engine running?): %w", k.engine, err)
	}
	for _, n := range names {
		if n == k.name {
			return true, nil
		}
	}
	return false, nil
}

// Create is CreateWithConfig without a config: kind's defaults.
func (k *Kind) Create(ctx context.Context, _ ...string) (string, error) {
	return k.create(ctx, []byte("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"))
}

// CreateWithConfig creates the cluster from a kind config file, or reuses
// it when a cluster of this name was made from the same config and image.
func (k *Kind) CreateWithConfig(ctx context.Context, configFile string) (string, error) {
	raw, err := os.ReadFile(configFile)
	if err != nil {
		return "", fmt.Errorf("reading kind config: %w", err)
	}
	return k.create(ctx, raw)
}

func (k *Kind) create(ctx context.Context, raw []byte) (string, error) {
	cfg, err := ParseKindConfig(raw)
	if err != nil {
		return "", err
	}
	cfg.KubeadmConfigPatches = append(cfg.KubeadmConfigPatches, k.patches...)
	final, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(append(final, 0), []byte(k.image)...))
	hash := hex.EncodeToString(sum[:])[:16]

	exists, err := k.Exists()
	if err != nil {
		return "", err
	}
	if exists {
		prev, _ := os.ReadFile(k.hashPath())
		if strings.TrimSpace(string(prev)) == hash {
			progress.Printf("reusing cluster %s (same config and node image)", k.name)
			k.reused = true
			return k.GetKubeconfig(), k.loadRestConfig()
		}
		why := "was not created by netconform from this checkout"
		if len(prev) > 0 {
			why = "was created from a different config or node image"
		}
		return "", fmt.Errorf("a kind cluster named %q already exists and %s; delete it first (make cluster-delete CLUSTER_CONFIG=..., or: kind delete cluster --name %s) or choose another name with CLUSTER_NAME=",
			k.name, why, k.name)
	}
	if err := os.MkdirAll(k.stateDir, 0o755); err != nil {
		return "", err
	}
	_ = os.Remove(k.hashPath())
	_ = os.Remove(k.GetKubeconfig())

	opts := []kind.CreateOption{
		kind.CreateWithV1Alpha4Config(cfg),
		kind.CreateWithKubeconfigPath(k.GetKubeconfig()),
		kind.CreateWithWaitForReady(k.waitReady),
		kind.CreateWithDisplayUsage(false),
		kind.CreateWithDisplaySalutation(false),
	}
	if k.image != "" {
		opts = append(opts, kind.CreateWithNodeImage(k.image))
	}
	done := make(chan error, 1)
	go func() { done <- k.provider.Create(k.name, opts...) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Interrupted: remove whatever exists so far, then wait for kind to
		// give up on the nodes that are gone, then remove again in case it
		// made more meanwhile.
		progress.Printf("interrupted: deleting the half-made cluster %s", k.name)
		_ = k.provider.Delete(k.name, k.GetKubeconfig())
		<-done
		_ = k.provider.Delete(k.name, k.GetKubeconfig())
		_ = os.RemoveAll(k.stateDir)
		return "", fmt.Errorf("creating cluster %s: %w", k.name, ctx.Err())
	}
	if err != nil {
		// kind removes the nodes of a failed create (retain is off); make
		// sure of it, since a failure after kind's own steps leaves them.
		_ = k.provider.Delete(k.name, k.GetKubeconfig())
		_ = os.RemoveAll(k.stateDir)
		return "", fmt.Errorf("creating kind cluster %s: %w", k.name, err)
	}
	if err := os.WriteFile(k.hashPath(), []byte(hash+"\n"), 0o644); err != nil {
		return "", err
	}
	return k.GetKubeconfig(), k.loadRestConfig()
}

func (k *Kind) loadRestConfig() error {
	if _, err := os.Stat(k.GetKubeconfig()); err != nil {
		// A reused cluster whose kubeconfig file was removed: write it again.
		if _, err := k.GenerateKubeconfig(); err != nil {
			return fmt.Errorf("writing kubeconfig for %s: %w", k.name, err)
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", k.GetKubeconfig())
	if err != nil {
		return fmt.Errorf("loading kubeconfig %s: %w", k.GetKubeconfig(), err)
	}
	k.restConfig = cfg
	return nil
}

func (k *Kind) GenerateKubeconfig(...string) (string, error) {
	return k.GetKubeconfig(), k.provider.ExportKubeConfig(k.name, k.GetKubeconfig(), false)
}

// ExportLogs collects kind's node logs (journals, containerd, pods) to dest.
func (k *Kind) ExportLogs(_ context.Context, dest string) error {
	return k.provider.CollectLogs(k.name, dest)
}

// Destroy deletes the cluster and its state.
func (k *Kind) Destroy(context.Context) error {
	if err := k.provider.Delete(k.name, k.GetKubeconfig()); err != nil {
		return fmt.Errorf("deleting kind cluster %s: %w", k.name, err)
	}
	return os.RemoveAll(k.stateDir)
}

// WaitForControlPlane waits until every node, CoreDNS, kube-proxy and the
// CNI are ready (e2e-framework's own kind provider only counts pods).
func (k *Kind) WaitForControlPlane(ctx context.Context, client klient.Client) error {
	return WaitReady(ctx, client.RESTConfig(), 5*time.Minute)
}

func (k *Kind) KubernetesRestConfig() *rest.Config { return k.restConfig }

// Nodes lists the cluster's node containers.
func (k *Kind) Nodes() ([]nodes.Node, error) {
	ns, err := k.provider.ListNodes(k.name)
	if err != nil {
		return nil, fmt.Errorf("listing nodes of %s: %w", k.name, err)
	}
	if len(ns) == 0 {
		return nil, errors.New("cluster " + k.name + " has no nodes")
	}
	return ns, nil
}

// ImageLabels reads the labels of a local image (node images carry what
// they were built from).
func ImageLabels(ctx context.Context, engine, image string) (map[string]string, error) {
	out, err := execOutput(ctx, engine, "image", "inspect", "--format", "{{json .Config.Labels}}", image)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	if s := strings.TrimSpace(string(out)); s != "" && s != "null" {
		if err := json.Unmarshal([]byte(s), &labels); err != nil {
			return nil, fmt.Errorf("reading labels of %s: %w", image, err)
		}
	}
	return labels, nil
}

// controlPlaneRole is used where a control-plane node is needed.
const controlPlaneRole = v1alpha4.ControlPlaneRole
