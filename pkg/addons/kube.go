package addons

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// fieldManager owns the fields netconform applies, so that a second Install
// on a reused cluster updates them instead of conflicting with the first.
const fieldManager = "netconform"

// pollInterval is how often waits look again.
var pollInterval = time.Second

// kube is what Install and Ready need of a cluster.
type kube struct {
	dyn    dynamic.Interface
	cs     kubernetes.Interface
	mapper resettableMapper
}

// resettableMapper maps kinds to API resources from discovery, cached;
// Reset drops the cache so that kinds of CRDs created since are found.
type resettableMapper interface {
	RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error)
	Reset()
}

func connect(kubeconfig string) (*kube, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %q: %w", kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("making a client from kubeconfig %q: %w", kubeconfig, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("making a dynamic client from kubeconfig %q: %w", kubeconfig, err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	return &kube{dyn: dyn, cs: cs, mapper: mapper}, nil
}

// apply server-side applies one object. Server-side apply keeps no
// last-applied annotation, which MetalLB's large CRDs would overflow, and
// makes Install repeatable.
func (k *kube) apply(ctx context.Context, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	m, err := k.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		// A CRD applied moments ago is not in the cached discovery yet.
		k.mapper.Reset()
		m, err = k.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return fmt.Errorf("applying %s: finding its API resource: %w", describe(o), err)
	}
	var r dynamic.ResourceInterface = k.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		r = k.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	}
	if _, err := r.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("applying %s: %w", describe(o), err)
	}
	return nil
}

// applyAll applies objs in order; manifests list namespaces and CRDs before
// what lives in them.
func (k *kube) applyAll(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		if err := k.apply(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// applyRetrying applies objs, retrying transient failures until timeout:
// objects guarded by an admission webhook cannot be created until the
// webhook's pod serves and its CA bundle is in place.
func (k *kube) applyRetrying(ctx context.Context, objs []*unstructured.Unstructured, timeout time.Duration) error {
	for _, o := range objs {
		err := poll(ctx, timeout, func(ctx context.Context) (bool, string, error) {
			err := k.apply(ctx, o)
			if err == nil {
				return true, "", nil
			}
			if transient(err) {
				return false, err.Error(), nil
			}
			return false, "", err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// transient says whether an apply may succeed later: the API type not yet
// served, a webhook not yet reachable, an API server busy or restarting.
// Rejections (invalid, forbidden, denied by a webhook) are not retried.
func transient(err error) bool {
	if meta.IsNoMatchError(err) {
		return true
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true // no answer from the API server at all
	}
	return apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err)
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// waitEstablished waits until every named CRD is Established, after which
// objects of its kinds can be created.
func (k *kube) waitEstablished(ctx context.Context, names []string, timeout time.Duration) error {
	for _, name := range names {
		err := poll(ctx, timeout, func(ctx context.Context) (bool, string, error) {
			crd, err := k.dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error(), nil
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				cm, _ := c.(map[string]any)
				if cm["type"] == "Established" {
					if cm["status"] == "True" {
						return true, "", nil
					}
					return false, fmt.Sprintf("Established=%v: %v", cm["status"], cm["message"]), nil
				}
			}
			return false, "no Established condition yet", nil
		})
		if err != nil {
			return fmt.Errorf("waiting for CustomResourceDefinition %s to be established: %w", name, err)
		}
	}
	return nil
}

// poll runs check every pollInterval until it reports done, fails, or
// timeout passes; a timeout error carries the last state check reported, so
// that it says what was still missing.
func poll(ctx context.Context, timeout time.Duration, check func(context.Context) (done bool, state string, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "not checked yet"
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		done, state, err := check(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if state != "" {
			last = state
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w after %s; last seen: %s", ctx.Err(), timeout, last)
		case <-t.C:
		}
	}
}

// describe names an object for messages: "Deployment metallb-system/controller".
func describe(o *unstructured.Unstructured) string {
	name := o.GetName()
	if ns := o.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	return strings.TrimSpace(o.GetKind() + " " + name)
}
