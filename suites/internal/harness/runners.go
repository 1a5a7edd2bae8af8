package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/netconform/netconform/pkg/fixtures"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/pkg/probe/kube"
)

// InPod is a probe runner executing netprobe in a pod's probe container.
func (e *Env) InPod(ns, pod string) probe.Runner {
	r, err := kube.NewPodExec(e.Config, ns, pod, fixtures.ProbeContainer)
	if err != nil {
		Fail(fmt.Sprintf("exec runner for %s/%s: %v", ns, pod, err))
	}
	return r
}

// External is a probe runner on the nodes' network but outside the cluster:
// a container on the kind network, as a client on the same L2 segment as
// the nodes (not hostNetwork). It is resident (see resident): started at
// the spec's first call, shared by its later calls, removed when the spec
// ends. Specs that need it skip, saying why, on a cluster that is not a
// kind cluster on this host.
func (e *Env) External() probe.Runner {
	if e.external == nil {
		c := e.externalContainer()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := e.resident(ctx, c)
		if err != nil {
			Fail(err.Error())
		}
		e.external = r
	}
	return e.external
}

// externalContainer describes the external client's container; it skips
// the spec when the cluster is not a kind cluster on this host.
func (e *Env) externalContainer() probe.Container {
	if e.Info.Network == "" || e.Info.Engine == "" {
		Skip("needs an external client on the nodes' network: the cluster is not a kind cluster on this host's engine")
	}
	return probe.Container{Engine: e.Info.Engine, Network: e.Info.Network, Image: e.Info.ProbeImage}
}

// resident starts c as a resident client (probe.Resident: one container,
// each probe exec'd in it, instead of a container per probe) and removes
// it when the current node's scope ends: the spec, or an Ordered
// container when called from BeforeAll. An interrupted run's clients are
// removed by the same clean-up, else by `netconform clean` (their label).
func (e *Env) resident(ctx context.Context, c probe.Container) (*probe.Resident, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	r, err := c.Start(ctx, "netconform-client-"+hex.EncodeToString(b))
	if err != nil {
		return nil, err
	}
	DeferCleanup(func(ctx SpecContext) {
		if e.external == r {
			e.external = nil
		}
		if err := r.Stop(ctx); err != nil {
			GinkgoWriter.Println(err)
		}
	}, NodeTimeout(time.Minute))
	return r, nil
}

// Record adds a probe result to the spec's report, so that what was seen is
// on record whether the spec passes or fails.
func Record(name string, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		data = []byte(fmt.Sprint(v))
	}
	AddReportEntry(name, string(data), ReportEntryVisibilityFailureOrVerbose)
}

// HTTP runs `netprobe http` through r and records the result.
func HTTP(ctx context.Context, r probe.Runner, o probe.HTTPOptions) probe.HTTPResult {
	res, err := probe.HTTP(ctx, r, o)
	if err != nil {
		Fail(fmt.Sprintf("probe http %s from %v: %v", o.URL, r, err))
	}
	Record("http "+o.URL, res)
	return res
}

// DNS runs `netprobe dns` through r and records the result.
func DNS(ctx context.Context, r probe.Runner, o probe.DNSOptions) probe.DNSResult {
	res, err := probe.DNS(ctx, r, o)
	if err != nil {
		Fail(fmt.Sprintf("probe dns %s %s from %v: %v", o.Type, o.Name, r, err))
	}
	Record("dns "+o.Type+" "+o.Name, res)
	return res
}

// Connect runs `netprobe connect` through r and records the result.
func Connect(ctx context.Context, r probe.Runner, o probe.ConnectOptions) probe.ConnectResult {
	res, err := probe.Connect(ctx, r, o)
	if err != nil {
		Fail(fmt.Sprintf("probe connect %s from %v: %v", o.Addr, r, err))
	}
	Record("connect "+o.Addr, res)
	return res
}
