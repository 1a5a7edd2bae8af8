package nodeimage

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/internal/run"
	"github.com/netconform/netconform/pkg/ociimage"
)

//go:embed customize.sh
var customizeScript string

// Options say what node image to make.
type Options struct {
	Version  string // Kubernetes version, e.g. v1.34.4
	Engine   string // docker or podman binary
	RepoRoot string // this repository, for the project's own programs
	// Shim puts the capability-dropping runtime shim in the node's
	// containerd (hosts whose bounding set is short).
	Shim bool
	// Offline forces building even when the upstream image could be pulled.
	Offline bool
	Log     io.Writer // detailed build log
}

// Result describes the image to create clusters from.
type Result struct {
	Image string `json:"image"`
	// Upstream is true when the image is kind's own kindest/node, pulled.
	Upstream bool `json:"upstream"`
	// KubeadmPatches are kubeadm config patches clusters made from this image
	// need (for example the CoreDNS tag actually built).
	KubeadmPatches []string `json:"kubeadmPatches,omitempty"`
	// Components says what was built for each image kubeadm wants.
	Components map[string]string `json:"components,omitempty"`
}

// Labels on built node images.
const (
	LabelPatches    = "io.netconform.kubeadm-patches"
	LabelComponents = "io.netconform.components"
	LabelVersion    = "io.netconform.kubernetes-version"
)

// ImageRepo is the repository of offline-built node images.
const ImageRepo = "netconform.local/node"

// UpstreamImage is kind's node image for a Kubernetes version.
func UpstreamImage(version string) string { return "kindest/node:" + version }

// Ensure returns a node image for opts.Version: kind's upstream image when
// it can be pulled (unless Offline), else one built here, reusing every
// cached step.
func Ensure(ctx context.Context, opts Options) (*Result, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if err := CheckVersion(ctx, opts.Version); err != nil {
		return nil, err
	}
	if !opts.Offline {
		if ok := tryPull(ctx, opts.Engine, UpstreamImage(opts.Version)); ok {
			progress.Printf("node image: using upstream %s (pulled from its registry)", UpstreamImage(opts.Version))
			return &Result{Image: UpstreamImage(opts.Version), Upstream: true}, nil
		}
		progress.Printf("node image: %s cannot be pulled here (no registry); building it offline from Debian packages and Go module sources", UpstreamImage(opts.Version))
	}
	return build(ctx, opts)
}

// tryPull reports whether the upstream image is present or can be pulled.
func tryPull(ctx context.Context, engine, ref string) bool {
	if err := run.Command(engine, "image", "inspect", ref).Run(ctx); err == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	return run.Command(engine, "pull", ref).Run(ctx) == nil
}

func build(ctx context.Context, opts Options) (*Result, error) {
	v := opts.Version
	log := opts.Log
	var nodeTar, userTar, kubeDir string
	// The root file systems need the network (Debian mirror) and little CPU;
	// the Kubernetes build needs CPU: run them side by side.
	errc := make(chan error, 1)
	go func() {
		errc <- progress.Step("root file systems from Debian "+DebianSuite+" (debootstrap)", func() error {
			var err error
			if nodeTar, err = (rootfs{"node", nodePackages}).build(ctx, log); err != nil {
				return err
			}
			userTar, err = (rootfs{"userland", userlandPackages}).build(ctx, log)
			return err
		})
	}()
	kubeDir = filepath.Join(CacheDir(), "kubernetes", v+"-"+key("kube-v1", v, goVersion(ctx)))
	kerr := progress.Step("Kubernetes "+v+" binaries from k8s.io/kubernetes@"+v, func() error {
		return cached(kubeDir, func(tmp string) error { return buildKubernetes(ctx, v, tmp, log) })
	})
	if err := <-errc; err != nil {
		return nil, err
	}
	if kerr != nil {
		return nil, kerr
	}
	bin := func(name string) string { return filepath.Join(kubeDir, "bin", name) }

	want, err := kubeadmImages(ctx, bin("kubeadm"), v)
	if err != nil {
		return nil, err
	}
	etcd, err := etcdComponent(ctx, tagOf(want["etcd"]))
	if err != nil {
		return nil, err
	}
	dns, err := corednsComponent(ctx, tagOf(want["coredns"]))
	if err != nil {
		return nil, err
	}
	toolsDir := filepath.Join(CacheDir(), "tools", key("tools-v1", etcd.Version, dns.Version, crictlVersion, v, tagOf(want["pause"]), goVersion(ctx)))
	if err := progress.Step(fmt.Sprintf("etcd %s, CoreDNS %s, crictl %s and pause %s", etcd.Version, dns.Version, crictlVersion, tagOf(want["pause"])), func() error {
		return cached(toolsDir, func(tmp string) error {
			out := filepath.Join(tmp, "bin")
			// etcd's modules replace their siblings (../api, ../pkg) with local
			// paths: outside the repository those are the same release.
			// Replaces of modules outside the release's major version (the
			// guards against go.etcd.io/etcd and go.etcd.io/tests/v3) are dropped.
			sameRelease := func(path string) string {
				if strings.HasPrefix(path, "go.etcd.io/etcd/") && strings.HasSuffix(path, "/"+semver.Major(etcd.Version)) {
					return etcd.Version
				}
				return ""
			}
			if err := buildGoModule(ctx, goModule{Path: etcd.Module, Version: etcd.Version, Mains: etcd.Mains, Out: "etcd"}, out, sameRelease, log); err != nil {
				return err
			}
			if err := buildGoModule(ctx, goModule{Path: "go.etcd.io/etcd/etcdctl/v3", Version: etcd.Version, Mains: []string{"go.etcd.io/etcd/etcdctl/v3"}, Out: "etcdctl"}, out, sameRelease, log); err != nil {
				return err
			}
			if err := buildGoModule(ctx, goModule{Path: dns.Module, Version: dns.Version, Mains: dns.Mains}, out, nil, log); err != nil {
				return err
			}
			if err := buildGoModule(ctx, goModule{Path: "sigs.k8s.io/cri-tools", Version: crictlVersion, Mains: []string{"sigs.k8s.io/cri-tools/cmd/crictl"}}, out, nil, log); err != nil {
				return err
			}
			return buildPause(ctx, v, tagOf(want["pause"]), tmp, log)
		})
	}); err != nil {
		return nil, err
	}
	tool := func(name string) string { return filepath.Join(toolsDir, "bin", name) }

	var own ownPrograms
	if err := progress.Step("netconform's own node programs (runtime shim, podnet)", func() error {
		own, err = buildOwnPrograms(ctx, opts.RepoRoot, log)
		return err
	}); err != nil {
		return nil, err
	}

	// Component images, named as kubeadm wants them; where the built version
	// differs (CoreDNS, sometimes etcd) the tag says what was built and a
	// kubeadm patch makes kubeadm use it.
	refs := map[string]string{
		"kube-apiserver":          want["kube-apiserver"],
		"kube-controller-manager": want["kube-controller-manager"],
		"kube-scheduler":          want["kube-scheduler"],
		"kube-proxy":              want["kube-proxy"],
		"etcd":                    repoOf(want["etcd"]) + ":" + etcd.Tag,
		"coredns":                 repoOf(want["coredns"]) + ":" + dns.Tag,
		"pause":                   want["pause"],
		"podnet":                  PodnetImage + ":" + own.podnetKey,
	}
	var patches []string
	if dns.Tag != tagOf(want["coredns"]) || etcd.Tag != tagOf(want["etcd"]) {
		patches = append(patches, fmt.Sprintf("kind: ClusterConfiguration\ndns:\n  imageTag: %s\netcd:\n  local:\n    imageTag: %s\n", dns.Tag, etcd.Tag))
		progress.Printf("kubeadm %s wants CoreDNS %s and etcd %s; built CoreDNS %s and etcd %s (what the module proxy serves); clusters get a kubeadm patch to use them",
			v, tagOf(want["coredns"]), tagOf(want["etcd"]), dns.Tag, etcd.Tag)
	}
	specs := []ociimage.Spec{
		{Tag: refs["kube-apiserver"], Files: []ociimage.File{{Path: "/usr/local/bin/kube-apiserver", Mode: 0o755, Source: bin("kube-apiserver")}}},
		{Tag: refs["kube-controller-manager"], Files: []ociimage.File{{Path: "/usr/local/bin/kube-controller-manager", Mode: 0o755, Source: bin("kube-controller-manager")}}},
		{Tag: refs["kube-scheduler"], Files: []ociimage.File{{Path: "/usr/local/bin/kube-scheduler", Mode: 0o755, Source: bin("kube-scheduler")}}},
		{Tag: refs["kube-proxy"], BaseLayers: []string{userTar}, Files: []ociimage.File{{Path: "/usr/local/bin/kube-proxy", Mode: 0o755, Source: bin("kube-proxy")}}},
		{Tag: refs["etcd"], Files: []ociimage.File{{Path: "/usr/local/bin/etcd", Mode: 0o755, Source: tool("etcd")}, {Path: "/usr/local/bin/etcdctl", Mode: 0o755, Source: tool("etcdctl")}}},
		{Tag: refs["coredns"], Entrypoint: []string{"/coredns"}, Files: []ociimage.File{{Path: "/coredns", Mode: 0o755, Source: tool("coredns")}}},
		{Tag: refs["pause"], Entrypoint: []string{"/pause"}, Files: []ociimage.File{{Path: "/pause", Mode: 0o755, Source: tool("pause")}}},
		{Tag: refs["podnet"], BaseLayers: []string{userTar}, Entrypoint: []string{"/usr/local/bin/podnet"}, Files: []ociimage.File{{Path: "/usr/local/bin/podnet", Mode: 0o755, Source: own.podnet}}},
	}

	kindVersion, err := pinnedVersion(ctx, opts.RepoRoot, "sigs.k8s.io/kind")
	if err != nil {
		return nil, err
	}
	kindDir, err := moduleDir(ctx, "sigs.k8s.io/kind", kindVersion, log)
	if err != nil {
		return nil, err
	}
	inputs := []string{"node-v1", v, nodeTar, userTar, kubeDir, toolsDir, own.key, kindVersion, customizeScript, fmt.Sprint(opts.Shim), strings.Join(patches, "")}
	nodeKey := key(inputs...)
	tag := fmt.Sprintf("%s:%s-%s", ImageRepo, v, nodeKey)
	res := &Result{Image: tag, KubeadmPatches: patches, Components: map[string]string{}}
	for k, r := range refs {
		res.Components[k] = r
	}
	if run.Command(opts.Engine, "image", "inspect", tag).Run(ctx) == nil {
		progress.Printf("node image %s is up to date", tag)
		return res, nil
	}

	ctxDir := filepath.Join(CacheDir(), "node-build", nodeKey)
	if err := cached(ctxDir, func(tmp string) error {
		return progress.Step("component images ("+fmt.Sprint(len(specs))+")", func() error {
			for i, s := range specs {
				if err := ociimage.WriteArchive(s, filepath.Join(tmp, "images", fmt.Sprintf("%02d.tar", i))); err != nil {
					return err
				}
			}
			files := filepath.Join(tmp, "files")
			return layoutNode(files, nodeLayout{
				kindFiles: filepath.Join(kindDir, "images/base/files"), version: v,
				kubeBin: filepath.Join(kubeDir, "bin"), crictl: tool("crictl"), shim: own.shim, useShim: opts.Shim,
				pauseRef: refs["pause"], cniManifest: podnetManifest(refs["podnet"]),
			})
		})
	}); err != nil {
		return nil, err
	}
	if err := progress.Step("node image "+tag, func() error {
		return assemble(ctx, opts.Engine, nodeTar, ctxDir, tag, v, res, log)
	}); err != nil {
		return nil, err
	}
	removeOlder(ctx, opts.Engine, v, tag)
	return res, nil
}

// assemble imports the root file system, runs the customisation in a
// container, and commits the result under tag. The intermediate container
// and image are removed whatever happens, and the final tag is only ever
// given to a finished image.
func assemble(ctx context.Context, engine, rootTar, ctxDir, tag, version string, res *Result, log io.Writer) error {
	baseTag := ImageRepo + "-base:" + key(rootTar)
	if run.Command(engine, "image", "inspect", baseTag).Run(ctx) != nil {
		f, err := os.Open(rootTar)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := (&run.Cmd{Name: engine, Args: []string{"import", "-", baseTag}, Stdin: f, Log: log}).Run(ctx); err != nil {
			return fmt.Errorf("importing the node root file system: %w", err)
		}
	}
	name := fmt.Sprintf("netconform-node-build-%d", time.Now().UnixNano())
	// A fresh context for clean-up, so that Ctrl-C still removes the container.
	defer exec.Command(engine, "rm", "-f", "-v", name).Run() //nolint:errcheck
	args := []string{"run", "--name", name, "--security-opt", "seccomp=unconfined", "-v", ctxDir + ":/build:ro",
		"--entrypoint", "/bin/bash", baseTag, "-c", customizeScript}
	if err := (&run.Cmd{Name: engine, Args: args, Log: log}).Run(ctx); err != nil {
		return fmt.Errorf("customising the node root file system: %w", err)
	}
	patches, _ := json.Marshal(res.KubeadmPatches)
	comps, _ := json.Marshal(res.Components)
	// kind's base image also sets STOPSIGNAL SIGRTMIN+3 (systemd's clean
	// shutdown); Docker 20.10's commit cannot set it, and kind removes nodes
	// with `rm -f`, so it only shortens `docker stop` of a node.
	commit := []string{"commit",
		"--change", `ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]`,
		"--change", `CMD []`,
		"--change", "ENV container=docker",
		"--change", "LABEL " + LabelVersion + "=" + version,
		"--change", "LABEL " + LabelPatches + "=" + strconvQuote(string(patches)),
		"--change", "LABEL " + LabelComponents + "=" + strconvQuote(string(comps)),
		name, tag}
	if err := (&run.Cmd{Name: engine, Args: commit, Log: log}).Run(ctx); err != nil {
		return fmt.Errorf("committing the node image: %w", err)
	}
	return nil
}

// removeOlder drops superseded node images of the same version (their
// inputs changed); an image a cluster still runs on stays, as the engine
// refuses to remove it.
func removeOlder(ctx context.Context, engine, version, keep string) {
	out, err := run.Command(engine, "images", "--format", "{{.Repository}}:{{.Tag}}", ImageRepo).Output(ctx)
	if err != nil {
		return
	}
	for _, ref := range strings.Fields(string(out)) {
		if ref != keep && strings.HasPrefix(ref, ImageRepo+":"+version+"-") {
			if run.Command(engine, "rmi", ref).Run(ctx) == nil {
				progress.Printf("removed superseded node image %s", ref)
			}
		}
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func goVersion(ctx context.Context) string {
	out, _ := run.Command("go", "env", "GOVERSION").Output(ctx)
	return strings.TrimSpace(string(out))
}
