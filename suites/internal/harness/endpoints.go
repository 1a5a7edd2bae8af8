package harness

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// Endpoint is one pod behind a Service as its EndpointSlices list it.
type Endpoint struct {
	Pod         string // target pod name ("" when the endpoint names none)
	IP          string // first address
	Node        string
	Ready       bool // what a proxy routes to
	Serving     bool
	Terminating bool
}

func (ep Endpoint) String() string {
	s := fmt.Sprintf("%s(%s on %s", ep.Pod, ep.IP, ep.Node)
	if !ep.Ready {
		s += ", not ready"
	}
	if ep.Terminating {
		s += ", terminating"
	}
	return s + ")"
}

// ReadyPods is the sorted names of the ready endpoints.
func ReadyPods(eps []Endpoint) []string {
	var out []string
	for _, ep := range eps {
		if ep.Ready {
			out = append(out, ep.Pod)
		}
	}
	sort.Strings(out)
	return out
}

// Endpoints reads the Service's EndpointSlices (label
// kubernetes.io/service-name) into one list, sorted by pod name.
func (e *Env) Endpoints(ctx context.Context, ns, svc string) ([]Endpoint, error) {
	list, err := e.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return nil, fmt.Errorf("listing EndpointSlices of %s/%s: %w", ns, svc, err)
	}
	return flatten(list.Items), nil
}

func flatten(slices []discoveryv1.EndpointSlice) []Endpoint {
	var out []Endpoint
	for _, s := range slices {
		for _, e := range s.Endpoints {
			ep := Endpoint{
				Ready:       e.Conditions.Ready == nil || *e.Conditions.Ready,
				Serving:     e.Conditions.Serving == nil || *e.Conditions.Serving,
				Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating,
			}
			if e.TargetRef != nil {
				ep.Pod = e.TargetRef.Name
			}
			if len(e.Addresses) > 0 {
				ep.IP = e.Addresses[0]
			}
			if e.NodeName != nil {
				ep.Node = *e.NodeName
			}
			out = append(out, ep)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out
}

// WaitEndpoints watches the Service's EndpointSlices until cond holds for
// their endpoints, or budget passes. It returns the endpoints that satisfied
// cond and when the change that satisfied it was seen (a watch event, so
// within milliseconds of the API server accepting it). On timeout the error
// lists the last endpoints seen.
func (e *Env) WaitEndpoints(ctx context.Context, ns, svc string, budget time.Duration, cond func([]Endpoint) bool) ([]Endpoint, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	api := e.Client.DiscoveryV1().EndpointSlices(ns)
	sel := metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc}
	var last []Endpoint
	for {
		list, err := api.List(ctx, sel)
		if err != nil {
			return last, time.Time{}, fmt.Errorf("listing EndpointSlices of %s/%s: %w", ns, svc, err)
		}
		slices := map[string]discoveryv1.EndpointSlice{}
		for _, s := range list.Items {
			slices[s.Name] = s
		}
		current := func() []Endpoint {
			items := make([]discoveryv1.EndpointSlice, 0, len(slices))
			for _, s := range slices {
				items = append(items, s)
			}
			return flatten(items)
		}
		if last = current(); cond(last) {
			return last, time.Now(), nil
		}
		opts := sel
		opts.ResourceVersion = list.ResourceVersion
		w, err := api.Watch(ctx, opts)
		if err != nil {
			return last, time.Time{}, fmt.Errorf("watching EndpointSlices of %s/%s: %w", ns, svc, err)
		}
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*discoveryv1.EndpointSlice)
			if !ok {
				continue // a watch error (e.g. too old a version): list again
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				slices[s.Name] = *s
			case watch.Deleted:
				delete(slices, s.Name)
			}
			if last = current(); cond(last) {
				w.Stop()
				return last, time.Now(), nil
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return last, time.Time{}, fmt.Errorf("EndpointSlices of %s/%s did not reach the expected state within %s; last seen: %s", ns, svc, budget, describeEndpoints(last))
		}
	}
}

func describeEndpoints(eps []Endpoint) string {
	if len(eps) == 0 {
		return "no endpoints"
	}
	parts := make([]string, len(eps))
	for i, ep := range eps {
		parts[i] = ep.String()
	}
	return strings.Join(parts, ", ")
}

// pollUntil calls check every half second until it holds or budget passes.
func pollUntil(ctx context.Context, budget time.Duration, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := check(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
