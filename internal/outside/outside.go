// Package outside makes a stand-in for "the world beyond this machine": a
// network namespace on the host, reached through a veth pair and routed like
// any destination off the host, with a TCP server in it. A packet from the
// kind network that reaches it has been forwarded off the kind bridge —
// exactly what netconform's isolation must prevent — while the host itself
// can reach it, which proves the server and the route work.
package outside

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netns"

	"github.com/netconform/netconform/internal/run"
)

// Greeting is what the server answers, so a client knows who answered.
const Greeting = "netconform-outside-world\n"

// World is the namespace, its address and its server.
type World struct {
	Name     string
	Addr     netip.AddrPort
	hostVeth string
	ln       net.Listener
}

// Start creates the namespace (root needed) on a 198.18.0.0/15 benchmark
// address, which no real network uses.
func Start(ctx context.Context) (*World, error) {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	w := &World{Name: "nc-outside-" + id, hostVeth: "nco" + id + "h"}
	peer := "nco" + id + "n"
	// A /30 drawn from both random bytes: parallel spec processes each make
	// their own world, and they must not pick the same subnet (1 in 16384).
	third, fourth := int(b[0]), int(b[1])&0xfc
	hostIP := fmt.Sprintf("198.18.%d.%d", third, fourth+1)
	nsIP := fmt.Sprintf("198.18.%d.%d", third, fourth+2)
	w.Addr = netip.MustParseAddrPort(nsIP + ":8080")
	steps := [][]string{
		{"ip", "netns", "add", w.Name},
		{"ip", "link", "add", w.hostVeth, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", peer, "netns", w.Name},
		{"ip", "addr", "add", hostIP + "/30", "dev", w.hostVeth},
		{"ip", "link", "set", w.hostVeth, "up"},
		{"ip", "netns", "exec", w.Name, "ip", "addr", "add", nsIP + "/30", "dev", peer},
		{"ip", "netns", "exec", w.Name, "ip", "link", "set", peer, "up"},
		{"ip", "netns", "exec", w.Name, "ip", "link", "set", "lo", "up"},
		{"ip", "netns", "exec", w.Name, "ip", "route", "add", "default", "via", hostIP},
	}
	for _, s := range steps {
		if err := run.Command(s[0], s[1:]...).Run(ctx); err != nil {
			w.Close()
			return nil, fmt.Errorf("making the outside-world namespace: %w", err)
		}
	}
	ln, err := listenIn(w.Name, w.Addr.String())
	if err != nil {
		w.Close()
		return nil, err
	}
	w.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(Greeting))
			_ = c.Close()
		}
	}()
	return w, nil
}

// listenIn opens a TCP listener inside the named namespace: the socket
// belongs to the namespace it was created in, whatever thread accepts.
func listenIn(name, addr string) (net.Listener, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("opening namespace %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, fmt.Errorf("entering namespace %s: %w", name, err)
	}
	ln, lerr := net.Listen("tcp", addr)
	if err := netns.Set(orig); err != nil {
		panic(fmt.Sprintf("cannot return to the original network namespace: %v", err))
	}
	if lerr != nil {
		return nil, fmt.Errorf("listening on %s in %s: %w", addr, name, lerr)
	}
	return ln, nil
}

// Close removes the server, the veth pair and the namespace.
func (w *World) Close() {
	if w.ln != nil {
		_ = w.ln.Close()
	}
	ctx := context.Background()
	_ = run.Command("ip", "link", "del", w.hostVeth).Run(ctx)
	_ = run.Command("ip", "netns", "del", w.Name).Run(ctx)
}
