package nodeimage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kindContainerdConfig is the part of kind's images/base/files containerd
// config that containerdConfig rewrites.
const kindContainerdConfig = `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = false
`

func TestContainerdConfigWithShim(t *testing.T) {
	out, err := containerdConfig(kindContainerdConfig, "registry.k8s.io/pause:3.10.2", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`sandbox_image = "registry.k8s.io/pause:3.10.2"`, "restrict_oom_score_adj = true", `BinaryName = "/usr/local/sbin/netconform-runc"`} {
		if !strings.Contains(out, want) {
			t.Errorf("config lacks %q:\n%s", want, out)
		}
	}
}

func TestContainerdConfigWithoutShimKeepsRuntime(t *testing.T) {
	out, err := containerdConfig(kindContainerdConfig, "registry.k8s.io/pause:3.10.1", false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "BinaryName") || !strings.Contains(out, "restrict_oom_score_adj = false") {
		t.Errorf("without the shim the runtime must stay as kind has it:\n%s", out)
	}
}

func TestContainerdConfigNoticesLayoutChange(t *testing.T) {
	if _, err := containerdConfig("version = 2\n", "x:1", true); err == nil {
		t.Fatal("a config without sandbox_image must be an error, not silently left alone")
	}
}

func TestWrapperGoModMapsLocalReplaces(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mod := "module go.etcd.io/etcd/server/v3\n\ngo 1.25\n\nreplace (\n\tgo.etcd.io/etcd/api/v3 => ../api\n\tgithub.com/x/y => github.com/z/y v1.2.3 // fork\n)\n"
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	m := goModule{Path: "go.etcd.io/etcd/server/v3", Version: "v3.7.0"}
	if err := wrapperGoMod(dst, m, src, func(string) string { return "v3.7.0" }); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dst, "go.mod"))
	for _, want := range []string{"require go.etcd.io/etcd/server/v3 v3.7.0", "go 1.25", "go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v3.7.0", "github.com/x/y => github.com/z/y v1.2.3"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("wrapper go.mod lacks %q:\n%s", want, got)
		}
	}
	// A mapping to "" drops the replace (etcd's FORBIDDEN_DEPENDENCY guards).
	if err := wrapperGoMod(dst, m, src, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "go.mod")); strings.Contains(string(got), "etcd/api/v3 =>") {
		t.Errorf("replace mapped to \"\" must be dropped:\n%s", got)
	}
	if err := wrapperGoMod(dst, m, src, nil); err == nil {
		t.Error("a local replace with no mapping must be an error")
	}
}

func TestStagingVersion(t *testing.T) {
	if got := stagingVersion("v1.37.2"); got != "v0.37.2" {
		t.Errorf("stagingVersion(v1.37.2) = %s", got)
	}
}
