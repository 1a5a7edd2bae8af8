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
func PoolRange(subnet netip.Prefix) (first, last netip.Addr, err error) {
	if !subnet.IsValid() {
		return first, last, fmt.Errorf("computing the MetalLB pool: no kind network subnet given")
	}
	if !subnet.Addr().Is4() {
		return first, last, fmt.Errorf("computing the MetalLB pool: kind network subnet %s is not IPv4", subnet)
	}
	subnet = subnet.Masked()
	hostBits := 32 - subnet.Bits()
	size := uint64(1) << hostBits
	if size/2 < poolSize+poolTopSlack+1 {
		return first, last, fmt.Errorf("computing the MetalLB pool: kind network subnet %s has %d addresses; a pool of %d in its upper half needs at least a /25", subnet, size, poolSize)
	}
	base := v4ToUint(subnet.Addr())
	broadcast := base + uint32(size-1)
	lastU := broadcast - poolTopSlack
	firstU := lastU - (poolSize - 1)
	return uintToV4(firstU), uintToV4(lastU), nil
}

// PoolAddresses renders the pool as MetalLB's IPAddressPool accepts it:
// "first-last".
func PoolAddresses(subnet netip.Prefix) (string, error) {
	first, last, err := PoolRange(subnet)
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
