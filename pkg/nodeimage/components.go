package nodeimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/semver"

	"github.com/netconform/netconform/internal/run"
)

// kubeBinaries are built from k8s.io/kubernetes for every node image.
var kubeBinaries = []string{"kubelet", "kubeadm", "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}

// stagingVersion maps a Kubernetes version to the published version of its
// staging modules: v1.37.2 → v0.37.2.
func stagingVersion(version string) string { return "v0" + strings.TrimPrefix(version, "v1") }

// buildKubernetes builds the Kubernetes binaries for version into dir/bin,
// version-stamped as a release build would be.
func buildKubernetes(ctx context.Context, version, dir string, log io.Writer) error {
	var mains []string
	for _, b := range kubeBinaries {
		mains = append(mains, "k8s.io/kubernetes/cmd/"+b)
	}
	return buildGoModule(ctx, kubeModule(version, mains, ""), filepath.Join(dir, "bin"), func(string) string { return stagingVersion(version) }, log)
}

// KubernetesSource downloads k8s.io/kubernetes at version through the Go
// module proxy and returns the module cache's (read-only) copy of it.
func KubernetesSource(ctx context.Context, version string) (string, error) {
	return moduleDir(ctx, "k8s.io/kubernetes", version, io.Discard)
}

// BuildKubeBinary builds one Kubernetes command (kube-proxy, say) for
// version from srcDir, a copy of the k8s.io/kubernetes module's source, into
// out, with the same flags and version stamp as the node image's binaries:
// a patched copy then rebuilds only the packages it changed.
func BuildKubeBinary(ctx context.Context, version, srcDir, command, out string, log io.Writer) error {
	m := kubeModule(version, []string{"k8s.io/kubernetes/cmd/" + command}, srcDir)
	m.Out = filepath.Base(out)
	return buildGoModule(ctx, m, filepath.Dir(out), func(string) string { return stagingVersion(version) }, log)
}

// kubeModule is k8s.io/kubernetes at version with its release ldflags.
func kubeModule(version string, mains []string, srcDir string) goModule {
	major, minor, _ := strings.Cut(strings.TrimPrefix(semver.MajorMinor(version), "v"), ".")
	var ld []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld,
			"-X "+pkg+".gitVersion="+version,
			"-X "+pkg+".gitMajor="+major,
			"-X "+pkg+".gitMinor="+minor,
			"-X "+pkg+".gitTreeState=clean",
			"-X "+pkg+".buildDate=1970-01-01T00:00:00Z")
	}
	return goModule{Path: "k8s.io/kubernetes", Version: version, Mains: mains, LDFlags: ld, SourceDir: srcDir}
}

// buildPause compiles the pause container's program from the Kubernetes
// module's own source, statically, tagged with the version kubeadm expects.
func buildPause(ctx context.Context, kubeVersion, pauseTag, dir string, log io.Writer) error {
	src, err := moduleDir(ctx, "k8s.io/kubernetes", kubeVersion, log)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, "bin", "pause")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	c := &run.Cmd{Name: "gcc", Args: []string{"-Os", "-Wall", "-Werror", "-static", "-DVERSION=v" + pauseTag + "-netconform",
		"-o", out, filepath.Join(src, "build/pause/linux/pause.c")}, Log: log}
	if err := c.Run(ctx); err != nil {
		return fmt.Errorf("compiling pause from k8s.io/kubernetes@%s (is gcc with static libc installed? apt-get install gcc libc6-dev): %w", kubeVersion, err)
	}
	return nil
}

// kubeadmImages asks the built kubeadm which images it will use.
func kubeadmImages(ctx context.Context, kubeadm, version string) (map[string]string, error) {
	out, err := run.Command(kubeadm, "config", "images", "list", "--kubernetes-version", version).Output(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing kubeadm's images: %w", err)
	}
	imgs := map[string]string{}
	for _, ref := range strings.Fields(string(out)) {
		name := ref[strings.LastIndex(ref, "/")+1:]
		name, _, _ = strings.Cut(name, ":")
		imgs[name] = ref
	}
	for _, want := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "etcd", "coredns", "pause"} {
		if imgs[want] == "" {
			return nil, fmt.Errorf("kubeadm %s lists no %s image in:\n%s", version, want, out)
		}
	}
	return imgs, nil
}

// tagOf returns the tag of an image reference.
func tagOf(ref string) string { return ref[strings.LastIndex(ref, ":")+1:] }

// repoOf returns an image reference without its tag.
func repoOf(ref string) string { return ref[:strings.LastIndex(ref, ":")] }

// addon components built from other modules: the version kubeadm wants when
// the proxy serves it, else the nearest served one.
type component struct {
	Name    string // image name as kubeadm lists it
	Module  string
	Mains   []string
	Version string // chosen version
	Tag     string // image tag for that version
}

// etcdComponent maps kubeadm's etcd tag (3.7.0-0) to the etcd server module.
func etcdComponent(ctx context.Context, wantTag string) (component, error) {
	want := "v" + strings.SplitN(wantTag, "-", 2)[0]
	served, err := moduleVersions(ctx, "go.etcd.io/etcd/server/v3", semver.MajorMinor(want))
	if err != nil {
		return component{}, err
	}
	v := pickServed(want, served)
	if v == "" {
		return component{}, fmt.Errorf("the Go module proxy serves no go.etcd.io/etcd/server/v3 at or above %s", semver.MajorMinor(want))
	}
	tag := wantTag
	if v != want {
		tag = strings.TrimPrefix(v, "v") + "-0"
	}
	return component{Name: "etcd", Module: "go.etcd.io/etcd/server/v3", Mains: []string{"go.etcd.io/etcd/server/v3"}, Version: v, Tag: tag}, nil
}

// corednsComponent maps kubeadm's CoreDNS tag (v1.14.6) to the module.
func corednsComponent(ctx context.Context, wantTag string) (component, error) {
	served, err := moduleVersions(ctx, "github.com/coredns/coredns", "")
	if err != nil {
		return component{}, err
	}
	v := pickServed(wantTag, served)
	if v == "" {
		return component{}, fmt.Errorf("the Go module proxy serves no github.com/coredns/coredns")
	}
	return component{Name: "coredns", Module: "github.com/coredns/coredns", Mains: []string{"github.com/coredns/coredns"}, Version: v, Tag: v}, nil
}

// crictlVersion is the cri-tools release built for every node (the module
// proxy serves v1.34.0 and v1.37.0; crictl talks CRI v1 to any containerd).
const crictlVersion = "v1.34.0"
