package nodeimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/netconform/netconform/internal/run"
)

// DebianSuite and DebianMirror are where root file systems come from. The
// mirror can be overridden with NETCONFORM_DEBIAN_MIRROR.
const DebianSuite = "bookworm"

func debianMirror() string {
	if m := os.Getenv("NETCONFORM_DEBIAN_MIRROR"); m != "" {
		return m
	}
	return "http://deb.debian.org/debian"
}

// nodePackages is what a kind node needs, from Debian: kind's base image
// installs the same set (images/base/Dockerfile), with containerd, runc and
// the CNI plugins from Debian instead of built from source.
var nodePackages = []string{
	"systemd", "systemd-sysv", "dbus", "libseccomp2", "ca-certificates", "curl", "jq", "procps",
	"conntrack", "iptables", "nftables", "ipset", "iproute2", "ethtool", "util-linux", "mount", "kmod",
	"pigz", "e2fsprogs", "bash", "socat", "iputils-ping",
	"containerd", "runc", "containernetworking-plugins",
}

// userlandPackages is the base of images that drive netfilter from a pod
// (kube-proxy, the default CNI daemon, kube-router): the same iptables and
// nftables userland as the node.
var userlandPackages = []string{"iptables", "nftables", "conntrack", "ipset", "iproute2", "libcap2-bin"}

// rootfs is a Debian root file system tarball, cached by its package list.
type rootfs struct {
	Name     string
	Packages []string
}

func (r rootfs) key() string {
	p := append([]string(nil), r.Packages...)
	sort.Strings(p)
	return key("rootfs-v1", DebianSuite, debianMirror(), strings.Join(p, ","))
}

// build debootstraps the file system (if not cached) and returns the path of
// its tarball.
func (r rootfs) build(ctx context.Context, log io.Writer) (string, error) {
	dir := filepath.Join(CacheDir(), "rootfs", r.Name+"-"+r.key())
	tarball := filepath.Join(dir, "rootfs.tar")
	err := cached(dir, func(tmp string) error {
		root := filepath.Join(tmp, "root")
		args := []string{"--variant=minbase", "--include=" + strings.Join(r.Packages, ","), DebianSuite, root, debianMirror()}
		if err := (&run.Cmd{Name: "debootstrap", Args: args, Log: log}).Run(ctx); err != nil {
			return fmt.Errorf("debootstrap of the %s root file system (needs root and the debootstrap package): %w", r.Name, err)
		}
		// Shrink: package lists, caches and documentation are not needed.
		for _, p := range []string{"var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man", "usr/share/locale", "var/log"} {
			full := filepath.Join(root, p)
			entries, _ := os.ReadDir(full)
			for _, e := range entries {
				os.RemoveAll(filepath.Join(full, e.Name()))
			}
		}
		c := &run.Cmd{Name: "tar", Args: []string{"--numeric-owner", "--xattrs", "-C", root, "-cf", filepath.Join(tmp, "rootfs.tar"), "."}, Log: log}
		if err := c.Run(ctx); err != nil {
			return fmt.Errorf("packing the %s root file system: %w", r.Name, err)
		}
		return os.RemoveAll(root)
	})
	return tarball, err
}
