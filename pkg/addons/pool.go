package addons

import (
	"fmt"
	"net/netip"
)

// Pool size and placement: 51 addresses ending 5 below the broadcast
// address, 172.18.255.200-172.18.255.250 for docker's default kind network
// 172.18.0.0/16. Docker hands container addresses out from the bottom of
// the subnet, so the top is free for MetalLB; the few addresses kept above
// the pool leave room for anything a user pins there by hand.
const (
	poolSize     = 51
	poolTopSlack = 5
)

// PoolRange returns the first and last address of the MetalLB address pool
// carved from the kind network's IPv4 subnet. The subnet must be large
// enough that the pool sits in its upper half, away from the container
// addresses docker allocates from the bottom.
//
// slot shifts the pool down by 256 addresses per slot, so that clusters of
// different cells sharing one kind network (each with its own MetalLB) hand
// out disjoint addresses: slot 0 is 172.18.255.200-250, slot 1
// 172.18.254.200-250, and so on.
func PoolRange(subnet netip.Prefix, slot int) (first, last netip.Addr, err error) {
	if !subnet.IsValid() {
		return first, last, fmt.Errorf("computing the MetalLB pool: no kind network subnet given")
	}
	if !subnet.Addr().Is4() {
		return first, last, fmt.Errorf("computing the MetalLB pool: kind network subnet %s is not IPv4", subnet)
	}
	subnet = subnet.Masked()
	hostBits := 32 - subnet.Bits()
	size := uint64(1) << hostBits
	if slot < 0 {
		return first, last, fmt.Errorf("computing the MetalLB pool: negative slot %d", slot)
	}
	shift := uint64(slot) * 256
	if size/2 < shift+poolSize+poolTopSlack+1 {
		return first, last, fmt.Errorf("computing the MetalLB pool: kind network subnet %s has %d addresses; a pool of %d for slot %d in its upper half needs at least %d", subnet, size, poolSize, slot, 2*(shift+poolSize+poolTopSlack+1))
	}
	base := v4ToUint(subnet.Addr())
	broadcast := base + uint32(size-1)
	lastU := broadcast - poolTopSlack - uint32(shift)
	firstU := lastU - (poolSize - 1)
	return uintToV4(firstU), uintToV4(lastU), nil
}

// PoolAddresses renders the pool as MetalLB's IPAddressPool accepts it:
// "first-last".
func PoolAddresses(subnet netip.Prefix, slot int) (string, error) {
	first, last, err := PoolRange(subnet, slot)
	if err != nil {
		return "", err
	}
	return first.String() + "-" + last.String(), nil
}

func v4ToUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uintToV4(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}
