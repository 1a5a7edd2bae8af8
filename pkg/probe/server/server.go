// Package server is netprobe's server side: a backend that says who it is and
// whom it saw, over HTTP and UDP.
//
// On these hosts a packet that escapes the dataplane can be answered by some
// foreign server listening on the same port, so a completed connection proves
// nothing. Every answer therefore names the answering pod, in the body where
// the shape allows and always in the X-Netprobe-Pod response header.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netconform/netconform/pkg/probe"
)

// PodHeader is the response header carrying the answering pod's name.
const PodHeader = "X-Netprobe-Pod"

// jobs is the seed backend's repertoire: the answer on / is a random one, so
// successive answers differ and a cached or replayed response stands out.
var jobs = []string{
	"Software Engineer",
	"Network Engineer",
	"Site Reliability Engineer",
	"Data Scientist",
	"Product Manager",
	"Technical Writer",
	"Security Analyst",
	"Database Administrator",
}

// PodName is the name a probe answers with: $POD_NAME (set from the pod's
// metadata.name by the fixtures) or else the host name, which is the pod
// name too unless the pod sets hostname or runs on the host network.
func PodName() string {
	if p := os.Getenv("POD_NAME"); p != "" {
		return p
	}
	h, _ := os.Hostname()
	return h
}

// Server answers as one pod.
type Server struct {
	Pod string
}

// Handler serves:
//
//	/healthz   200 "ok" (readiness)
//	/hostname  the pod name as text
//	/clientip  probe.ClientIPAnswer: the peer address this pod saw
//	anything else, including / and /job: probe.JobAnswer
//
// Unknown paths answer like / so that an Ingress path rule can route any
// prefix here without a rewrite.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		s.header(w, "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/hostname", func(w http.ResponseWriter, _ *http.Request) {
		s.header(w, "text/plain; charset=utf-8")
		fmt.Fprintln(w, s.Pod)
	})
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) {
		s.json(w, s.clientIP(r.RemoteAddr))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		s.json(w, probe.JobAnswer{Job: jobs[rand.IntN(len(jobs))], Pod: s.Pod})
	})
	return mux
}

func (s *Server) header(w http.ResponseWriter, contentType string) {
	w.Header().Set(PodHeader, s.Pod)
	w.Header().Set("Content-Type", contentType)
}

func (s *Server) json(w http.ResponseWriter, v any) {
	s.header(w, "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) clientIP(remote string) probe.ClientIPAnswer {
	a := probe.ClientIPAnswer{Pod: s.Pod}
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		a.IP, a.Port = ap.Addr().Unmap().String(), int(ap.Port())
	} else {
		a.IP = remote
	}
	return a
}

// Answer is the reply to one UDP datagram: "hostname" gets the pod name,
// "clientip" a probe.ClientIPAnswer; anything else a JSON error that still
// names the pod.
func (s *Server) Answer(payload []byte, peer net.Addr) []byte {
	switch strings.TrimSpace(string(payload)) {
	case "hostname":
		return []byte(s.Pod)
	case "clientip":
		b, _ := json.Marshal(s.clientIP(peer.String()))
		return b
	default:
		b, _ := json.Marshal(map[string]string{"pod": s.Pod, "error": "unknown request; send hostname or clientip"})
		return b
	}
}

// ServeUDP answers datagrams on conn until it is closed.
func (s *Server) ServeUDP(conn net.PacketConn) error {
	buf := make([]byte, 2048)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading UDP on %s: %w", conn.LocalAddr(), err)
		}
		if _, err := conn.WriteTo(s.Answer(buf[:n], peer), peer); err != nil {
			// One unreachable peer must not stop the server.
			fmt.Fprintf(os.Stderr, "netprobe: answering %s on %s: %v\n", peer, conn.LocalAddr(), err)
		}
	}
}

// Options say where to listen.
type Options struct {
	HTTPPorts []int
	UDPPorts  []int
	// Grace bounds how long in-flight HTTP requests may finish after the
	// context ends (SIGTERM); the fixtures give pods 2s in total.
	Grace time.Duration
}

// Run listens on every port (all addresses, both families) and serves until
// ctx ends, then shuts down gracefully. A port that cannot be bound fails Run
// at once: a silently missing listener would look like a dataplane fault.
func (s *Server) Run(ctx context.Context, o Options) error {
	var (
		listeners []net.Listener
		udps      []net.PacketConn
	)
	closeUDP := func() {
		for _, c := range udps {
			c.Close()
		}
	}
	for _, p := range o.HTTPPorts {
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("listening for HTTP on port %d: %w", p, err)
		}
		listeners = append(listeners, l)
	}
	for _, p := range o.UDPPorts {
		c, err := net.ListenPacket("udp", ":"+strconv.Itoa(p))
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			closeUDP()
			return fmt.Errorf("listening for UDP on port %d: %w", p, err)
		}
		udps = append(udps, c)
	}

	errc := make(chan error, len(listeners)+len(udps))
	var (
		wg    sync.WaitGroup
		https []*http.Server
	)
	for _, l := range listeners {
		hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		https = append(https, hs)
		wg.Go(func() {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serving HTTP on %s: %w", l.Addr(), err)
			}
		})
	}
	for _, c := range udps {
		wg.Go(func() {
			if err := s.ServeUDP(c); err != nil {
				errc <- err
			}
		})
	}
	fmt.Fprintf(os.Stderr, "netprobe: pod %q serving HTTP on %v, UDP on %v\n", s.Pod, o.HTTPPorts, o.UDPPorts)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	grace := o.Grace
	if grace <= 0 {
		grace = time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, hs := range https {
		_ = hs.Shutdown(sctx)
	}
	closeUDP()
	wg.Wait()
	return err
}

// ParsePorts reads a comma-separated port list ("3000,8080"); empty means
// none.
func ParsePorts(s string) ([]int, error) {
	var ports []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("port %q in %q is not a number in 0..65535", f, s)
		}
		ports = append(ports, p)
	}
	return ports, nil
}
