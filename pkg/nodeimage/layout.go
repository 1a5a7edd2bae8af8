package nodeimage

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// nodeLayout is what layoutNode puts on top of the Debian root file system.
type nodeLayout struct {
	kindFiles   string // sigs.k8s.io/kind@<pinned>/images/base/files
	version     string
	kubeBin     string
	crictl      string
	shim        string
	useShim     bool
	pauseRef    string
	cniManifest string
}

// defaultStorage is a StorageClass needing no image (kind's own default
// storage, local-path-provisioner, is not obtainable offline).
const defaultStorage = `# host-path based default storage class (netconform offline node image)
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
`

// layoutNode writes the file tree copied over the root file system: kind's
// node layout read from the pinned kind module, the Kubernetes binaries,
// and the containerd configuration adjusted for this image.
func layoutNode(dst string, l nodeLayout) error {
	// kind's base files, with the modes its Dockerfile gives them.
	err := filepath.WalkDir(l.kindFiles, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(l.kindFiles, p)
		if strings.HasPrefix(rel, "LICENSES") || rel == filepath.Join("usr/local/bin/clean-install") {
			return nil
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(rel, "usr/local/bin/") || strings.HasPrefix(rel, "kind/bin/") {
			mode = 0o755
		}
		return copyFile(p, filepath.Join(dst, rel), mode)
	})
	if err != nil {
		return fmt.Errorf("laying out kind's node files from %s: %w", l.kindFiles, err)
	}
	for _, b := range []string{"kubelet", "kubeadm", "kubectl"} {
		if err := copyFile(filepath.Join(l.kubeBin, b), filepath.Join(dst, "usr/bin", b), 0o755); err != nil {
			return err
		}
	}
	if err := copyFile(l.crictl, filepath.Join(dst, "usr/local/bin/crictl"), 0o755); err != nil {
		return err
	}
	if err := copyFile(l.shim, filepath.Join(dst, "usr/local/sbin/netconform-runc"), 0o755); err != nil {
		return err
	}
	cfgPath := filepath.Join(dst, "etc/containerd/config.toml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	out, err := containerdConfig(string(cfg), l.pauseRef, l.useShim)
	if err != nil {
		return err
	}
	writes := map[string]string{
		"etc/containerd/config.toml":          out,
		"kind/version":                        l.version,
		"kind/manifests/default-cni.yaml":     l.cniManifest,
		"kind/manifests/default-storage.yaml": defaultStorage,
	}
	for rel, content := range writes {
		if err := writeFile(filepath.Join(dst, rel), content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// containerdConfig adapts kind's containerd configuration: the sandbox
// image kubeadm wants, and on hosts with a short capability bounding set the
// runtime shim as runc's binary and restrict_oom_score_adj (lowering
// oom_score_adj needs CAP_SYS_RESOURCE; without it every pod sandbox fails
// with "can't get final child's PID from pipe: EOF").
func containerdConfig(cfg, pauseRef string, shim bool) (string, error) {
	replace := func(old, new string) error {
		if !strings.Contains(cfg, old) {
			return fmt.Errorf("kind's containerd config has no %q to adapt; the pinned kind version changed its layout", old)
		}
		cfg = strings.ReplaceAll(cfg, old, new)
		return nil
	}
	i := strings.Index(cfg, "sandbox_image = ")
	if i < 0 {
		return "", fmt.Errorf("kind's containerd config has no sandbox_image")
	}
	end := strings.Index(cfg[i:], "\n")
	cfg = cfg[:i] + fmt.Sprintf("sandbox_image = %q", pauseRef) + cfg[i+end:]
	if shim {
		if err := replace("restrict_oom_score_adj = false", "restrict_oom_score_adj = true"); err != nil {
			return "", err
		}
		if err := replace("    SystemdCgroup = true", "    SystemdCgroup = true\n    BinaryName = \"/usr/local/sbin/netconform-runc\""); err != nil {
			return "", err
		}
	}
	return cfg, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func writeFile(path, content string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), mode)
}
