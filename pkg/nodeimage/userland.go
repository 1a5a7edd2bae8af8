package nodeimage

import (
	"context"
	"io"
)

// UserlandRootfs returns the path of the tarball of the Debian root file
// system that images driving netfilter from a pod are built on (kube-proxy's
// and podnet's in the node image; add-ons such as kube-router use it too):
// iptables, nftables, conntrack, ipset (with libipset13), iproute2. It is
// built with debootstrap unless the cache already holds it, and is the same
// file the node image build uses, so an add-on image built on it runs the
// same netfilter userland as kube-proxy.
func UserlandRootfs(ctx context.Context, log io.Writer) (string, error) {
	if log == nil {
		log = io.Discard
	}
	return rootfs{"userland", userlandPackages}.build(ctx, log)
}
