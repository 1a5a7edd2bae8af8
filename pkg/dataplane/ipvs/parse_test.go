package ipvs

// The tables in testdata/ are hand-written from ipvsadm's and the kernel's
// documented output formats, not captured from a live node: this host's
// kernel has no IPVS (see testdata/README.md).

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readTable(t *testing.T, name string) *Table {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := ParseBytes(b)
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return tb
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParseIpvsadmList(t *testing.T) {
	tb := readTable(t, "ipvsadm-Ln.txt")
	if tb.Source != SourceIpvsadm || tb.Version != "1.2.1" || tb.Size != 4096 || tb.Stats {
		t.Errorf("table header: %+v", tb)
	}
	if len(tb.Services) != 13 {
		t.Fatalf("%d virtual services, want 13", len(tb.Services))
	}
	api := tb.Service("tcp", ap("10.96.0.1:443"))
	if api == nil || api.Scheduler != "rr" || api.Persistent || len(api.RealServers) != 1 || api.Line != 4 {
		t.Fatalf("kubernetes service: %+v", api)
	}
	want := RealServer{Addr: ap("172.18.0.2:6443"), Forward: "Masq", Weight: 1, ActiveConn: 2, InActConn: 0, Line: 5}
	if got := *api.RealServers[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("apiserver real server %+v, want %+v", got, want)
	}
	backend := tb.Service("tcp", ap("10.96.45.12:3000"))
	if backend == nil || len(backend.RealServers) != 3 || backend.RealServers[2].Weight != 0 || backend.RealServers[0].InActConn != 3 {
		t.Errorf("backend service: %+v", backend)
	}
	sticky := tb.Service("tcp", ap("10.96.130.40:8080"))
	if sticky == nil || !sticky.Persistent || sticky.Timeout != 10800 || sticky.Netmask != "" || len(sticky.Flags) != 0 {
		t.Errorf("sticky service: %+v", sticky)
	}
	if udp := tb.Service("udp", ap("10.96.0.10:53")); udp == nil || udp.Key() != "UDP 10.96.0.10:53" {
		t.Errorf("udp dns service: %+v", udp)
	}
	if tb.Service("udp", ap("10.96.0.1:443")) != nil {
		t.Error("protocol not part of the lookup")
	}
}

// The kernel's listing of the same table reads the same, but for the
// timeout, which it keeps in jiffies (HZ=250 in the hand-written file).
func TestParseProcMatchesIpvsadm(t *testing.T) {
	a := readTable(t, "ipvsadm-Ln.txt")
	p := readTable(t, "proc-net-ip_vs.txt")
	if p.Source != SourceProc {
		t.Fatalf("source %q, want proc", p.Source)
	}
	if len(a.Services) != len(p.Services) {
		t.Fatalf("%d services from ipvsadm, %d from proc", len(a.Services), len(p.Services))
	}
	for i, va := range a.Services {
		vp := p.Services[i]
		if va.Key() != vp.Key() || va.Scheduler != vp.Scheduler || va.Persistent != vp.Persistent || len(va.RealServers) != len(vp.RealServers) {
			t.Errorf("service %d: ipvsadm %+v, proc %+v", i, va, vp)
			continue
		}
		if va.Persistent && vp.Timeout != va.Timeout*250 {
			t.Errorf("%s: proc timeout %d, want %d jiffies", vp.Key(), vp.Timeout, va.Timeout*250)
		}
		for j, ra := range va.RealServers {
			rp := vp.RealServers[j]
			if ra.Addr != rp.Addr || ra.Forward != rp.Forward || ra.Weight != rp.Weight || ra.ActiveConn != rp.ActiveConn || ra.InActConn != rp.InActConn {
				t.Errorf("%s real server %d: ipvsadm %+v, proc %+v", va.Key(), j, ra, rp)
			}
		}
	}
}

func TestParseStats(t *testing.T) {
	tb := readTable(t, "ipvsadm-Ln-stats.txt")
	if !tb.Stats || len(tb.Services) != 5 {
		t.Fatalf("stats table: stats=%v, %d services", tb.Stats, len(tb.Services))
	}
	api := tb.Service("tcp", ap("10.96.0.1:443"))
	want := Counters{Conns: 1523, InPkts: 8812345, OutPkts: 7700123, InBytes: 1234e6, OutBytes: 456789e3, Approximate: true}
	if api == nil || api.Counters == nil || *api.Counters != want {
		t.Fatalf("kubernetes counters: %+v, want %+v", api, want)
	}
	if rs := api.RealServers[0]; rs.Counters == nil || rs.Counters.Conns != 1523 || rs.Forward != "" {
		t.Errorf("real server counters: %+v", rs)
	}
	if dns := tb.Service("tcp", ap("10.96.0.10:53")); dns == nil || dns.Counters.Approximate {
		t.Errorf("small counters flagged approximate: %+v", dns)
	}
	// Weights are not in a --stats listing: shares cannot be predicted.
	if _, err := tb.Shares("tcp", ap("10.96.0.1:443")); err == nil {
		t.Error("shares from a --stats listing")
	}
}

func TestParseIPv6FWMarkAndFlags(t *testing.T) {
	const ipvsadm = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  [fd00:10:96::1]:443 rr
  -> [fc00:f853:ccd:e793::3]:6443 Masq    1      0          0
UDP  [fd00:10:96::a]:53 sh sh-fallback,sh-port persistent 300 mask 64
  -> [fd00:10:244:1::5]:53        Masq    1      0          0
SCTP  10.96.7.7:9999 wrr ops
  -> 10.244.1.9:9999              Masq    3      0          0
  -> 10.244.2.9:9999              Masq    1      0          0
FWM  7 rr persistent 60 mask 255.255.255.0
  -> 10.244.1.9:0                 Route   1      0          0
FWM  8 IPv6 rr
`
	tb, err := ParseString(ipvsadm)
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Services) != 5 {
		t.Fatalf("%d services", len(tb.Services))
	}
	v6 := tb.Service("tcp", ap("[fd00:10:96::1]:443"))
	if v6 == nil || !v6.IPv6 || v6.RealServers[0].Addr != ap("[fc00:f853:ccd:e793::3]:6443") {
		t.Errorf("IPv6 service: %+v", v6)
	}
	dns := tb.Service("udp", ap("[fd00:10:96::a]:53"))
	if dns == nil || dns.Scheduler != "sh" || !dns.Persistent || dns.Timeout != 300 || dns.Netmask != "64" || !reflect.DeepEqual(dns.Flags, []string{"sh-fallback,sh-port"}) {
		t.Errorf("flags: %+v", dns)
	}
	sctp := tb.Service("sctp", ap("10.96.7.7:9999"))
	if sctp == nil || sctp.Scheduler != "wrr" || !reflect.DeepEqual(sctp.Flags, []string{"ops"}) {
		t.Errorf("sctp: %+v", sctp)
	}
	fw := tb.Services[3]
	if fw.FWMark != 7 || fw.Protocol != "" || fw.Netmask != "255.255.255.0" || fw.Key() != "FWM 7" || fw.RealServers[0].Forward != "Route" {
		t.Errorf("fwmark: %+v", fw)
	}
	if fw6 := tb.Services[4]; fw6.FWMark != 8 || !fw6.IPv6 || len(fw6.RealServers) != 0 {
		t.Errorf("fwmark v6: %+v", fw6)
	}
	shares, err := tb.Shares("sctp", ap("10.96.7.7:9999"))
	if err != nil || len(shares) != 2 || shares[0].Probability != 0.75 || shares[1].Probability != 0.25 {
		t.Errorf("wrr shares %+v, %v", shares, err)
	}
	if _, err := tb.Shares("udp", ap("[fd00:10:96::a]:53")); err == nil || !strings.Contains(err.Error(), "scheduler sh") {
		t.Errorf("sh scheduler predicted: %v", err)
	}

	const proc = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  [fd00:0010:0096:0000:0000:0000:0000:0001]:01BB rr
  -> [fc00:f853:0ccd:e793:0000:0000:0000:0003]:192B      Masq    1      0          0
FWM  0000000A rr persistent 15000 FFFFFF00
`
	tp, err := ParseString(proc)
	if err != nil {
		t.Fatal(err)
	}
	if v := tp.Service("tcp", ap("[fd00:10:96::1]:443")); v == nil || v.RealServers[0].Addr != ap("[fc00:f853:ccd:e793::3]:6443") {
		t.Errorf("proc IPv6: %+v", tp.Services)
	}
	if fw := tp.Services[1]; fw.FWMark != 10 || fw.Timeout != 15000 || fw.Netmask != "FFFFFF00" {
		t.Errorf("proc fwmark: %+v", fw)
	}
}

func TestParseEmptyTable(t *testing.T) {
	tb, err := ParseString("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	if err != nil || len(tb.Services) != 0 {
		t.Errorf("empty table: %+v, %v", tb, err)
	}
}

func TestParseErrors(t *testing.T) {
	head := "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
	for _, tc := range []struct {
		name, in string
		line     int
	}{
		{"not a listing", "Chain INPUT (policy ACCEPT)\n", 1},
		{"nothing", "", 0},
		{"hostnames", head + "TCP  kubernetes.default:https rr\n", 4},
		{"orphan real server", head + "  -> 10.0.0.1:80   Masq 1 0 0\n", 4},
		{"bad protocol", head + "ICMP  10.0.0.1:80 rr\n", 4},
		{"no scheduler", head + "TCP  10.0.0.1:80\n", 4},
		{"bad weight", head + "TCP  10.0.0.1:80 rr\n  -> 10.0.0.2:80 Masq x 0 0\n", 5},
		{"short real server", head + "TCP  10.0.0.1:80 rr\n  -> 10.0.0.2:80 Masq 1\n", 5},
		{"bad persistence", head + "TCP  10.0.0.1:80 rr persistent\n", 4},
		{"rate listing", "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n", 2},
		{"bad counter", "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80  1 2 3 4 5X\n", 4},
		{"proc decimal address", "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nTCP  10.0.0.1:80 rr\n", 3},
	} {
		_, err := ParseString(tc.in)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s: error %v, want a *ParseError", tc.name, err)
			continue
		}
		if pe.Line != tc.line {
			t.Errorf("%s: error at line %d, want %d: %v", tc.name, pe.Line, tc.line, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"ipvsadm-Ln.txt", "proc-net-ip_vs.txt", "ipvsadm-Ln-stats.txt"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		tb, err := ParseString(s)
		if err != nil {
			return
		}
		for _, v := range tb.Services {
			_ = v.Key()
			if v.Protocol != "" {
				_, _ = tb.Shares(v.Protocol, v.Addr)
			}
		}
	})
}
