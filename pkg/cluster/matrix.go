// Package cluster gets a live cluster for a matrix cell: it creates (or
// reuses) a kind cluster with the kind Go library, or uses one the user
// brings through KUBECONFIG. It implements e2e-framework's cluster provider
// interface so envfuncs work, and never needs a kind binary.
package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/semver"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/netconform/netconform/pkg/report"
)

// Cell is one point of the test matrix (clusters/matrix.yaml).
type Cell struct {
	Config     string   `json:"config"` // kind config, relative to the matrix
	Kubernetes string   `json:"kubernetes"`
	CNI        string   `json:"cni"`
	Addons     []string `json:"addons"`
	Requires   []string `json:"requires"`
	// KnownFailures are failures expected here, each by its signature
	// (the spec, a regular expression of its failure message), with why.
	KnownFailures []report.Declaration `json:"knownFailures"`

	// Filled in on load.
	Name      string            `json:"-"` // e.g. v1.34/iptables
	Index     int               `json:"-"` // position in the matrix
	Path      string            `json:"-"` // absolute path of the kind config
	Raw       []byte            `json:"-"`
	Kind      *v1alpha4.Cluster `json:"-"`
	ProxyMode string            `json:"-"`
}

// Matrix is the set of cells.
type Matrix struct {
	Dir   string
	Cells []*Cell `json:"cells"`
}

// LoadMatrix reads dir/matrix.yaml and every kind config it names.
func LoadMatrix(dir string) (*Matrix, error) {
	data, err := os.ReadFile(filepath.Join(dir, "matrix.yaml"))
	if err != nil {
		return nil, fmt.Errorf("reading the cluster matrix: %w", err)
	}
	m := &Matrix{}
	path := filepath.Join(dir, "matrix.yaml")
	if err := yaml.UnmarshalStrict(data, m); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	m.Dir, _ = filepath.Abs(dir)
	for i, c := range m.Cells {
		c.Index = i
		c.Path = filepath.Join(m.Dir, c.Config)
		c.Name = strings.TrimSuffix(c.Config, ".yaml")
		if !semver.IsValid(c.Kubernetes) {
			return nil, fmt.Errorf("matrix cell %s: kubernetes %q is not a version like v1.34.4", c.Name, c.Kubernetes)
		}
		if c.Raw, err = os.ReadFile(c.Path); err != nil {
			return nil, fmt.Errorf("matrix cell %s: %w", c.Name, err)
		}
		if c.Kind, err = ParseKindConfig(c.Raw); err != nil {
			return nil, fmt.Errorf("matrix cell %s (%s): %w", c.Name, c.Path, err)
		}
		if _, err := report.Compile(c.KnownFailures); err != nil {
			return nil, fmt.Errorf("%s: matrix cell %s: %w", path, c.Name, err)
		}
		c.ProxyMode = string(c.Kind.Networking.KubeProxyMode)
		if c.ProxyMode == "" {
			c.ProxyMode = "iptables"
		}
	}
	return m, nil
}

// ParseKindConfig parses and checks a kind v1alpha4 cluster config, strictly,
// so that a misspelt field is an error rather than silently ignored.
func ParseKindConfig(raw []byte) (*v1alpha4.Cluster, error) {
	var c v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		return nil, fmt.Errorf("not a valid kind config: %w", err)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		return nil, fmt.Errorf("not a kind config: want kind: Cluster and apiVersion: kind.x-k8s.io/v1alpha4, got kind %q apiVersion %q", c.Kind, c.APIVersion)
	}
	if len(c.Nodes) == 0 {
		c.Nodes = []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}}
	}
	return &c, nil
}

// Lookup finds the cell for a config path as the user typed it
// (clusters/v1.34/iptables.yaml, an absolute path, or v1.34/iptables).
func (m *Matrix) Lookup(config string) (*Cell, error) {
	abs, _ := filepath.Abs(config)
	for _, c := range m.Cells {
		if c.Path == abs || c.Name == config || c.Config == config || "clusters/"+c.Config == filepath.ToSlash(config) {
			return c, nil
		}
	}
	if _, err := os.Stat(config); err != nil {
		return nil, fmt.Errorf("CLUSTER_CONFIG %q does not exist; cells: %s", config, strings.Join(m.names(), ", "))
	}
	return nil, fmt.Errorf("CLUSTER_CONFIG %q is not a cell of %s; add it there (with its Kubernetes version) or use one of: %s",
		config, filepath.Join(m.Dir, "matrix.yaml"), strings.Join(m.names(), ", "))
}

func (m *Matrix) names() []string {
	var n []string
	for _, c := range m.Cells {
		n = append(n, "clusters/"+c.Config)
	}
	return n
}

// Default is the newest cell in the given proxy mode that this host can run.
func (m *Matrix) Default(mode string, hostHas func(feature string) bool) (*Cell, error) {
	var ok []*Cell
	for _, c := range m.Cells {
		if c.ProxyMode == mode && c.CNI == "podnet" && c.Unsupported(hostHas) == "" {
			ok = append(ok, c)
		}
	}
	if len(ok) == 0 {
		return nil, fmt.Errorf("no cell in %s runs in %s mode on this host", m.Dir, mode)
	}
	sort.SliceStable(ok, func(i, j int) bool { return semver.Compare(ok[i].Kubernetes, ok[j].Kubernetes) > 0 })
	return ok[0], nil
}

// Unsupported says why this host cannot run the cell, or "" when it can.
func (c *Cell) Unsupported(hostHas func(feature string) bool) string {
	for _, r := range c.Requires {
		if !hostHas(r) {
			return fmt.Sprintf("cell %s needs %s, which this host's kernel does not provide", c.Name, r)
		}
	}
	return ""
}
