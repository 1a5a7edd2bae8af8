//go:build addonsbuild

// The heavy half of the tests: it builds the add-on binaries and images for
// real (Traefik alone takes about a quarter of an hour on two cores) and
// reads MetalLB's manifest from its module source, so it needs the Go
// module proxy. It never runs in the normal suite:
//
//	go test -tags addonsbuild -run . -v -timeout 60m ./pkg/addons/
//
// NETCONFORM_ADDONS=metallb (a comma-separated list) limits the build.
package addons

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestRealMetalLBManifest(t *testing.T) {
	objs, err := MetalLBObjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ofKind(objs, "CustomResourceDefinition")); n == 0 {
		t.Error("no CRDs in the MetalLB manifest")
	}
	for _, w := range metallbWorkloads() {
		var found bool
		for _, o := range objs {
			if o.GetKind() == w.Kind && o.GetNamespace() == w.Namespace && o.GetName() == w.Name {
				found = true
				for _, c := range containers(t, o) {
					if !strings.HasPrefix(c[0], Registry+"/") || c[1] != "IfNotPresent" {
						t.Errorf("%s: container image %s, pull policy %s", w, c[0], c[1])
					}
				}
			}
		}
		if !found {
			t.Errorf("the MetalLB manifest has no %s", w)
		}
	}
}

func TestBuildImages(t *testing.T) {
	names := Names()
	if s := os.Getenv("NETCONFORM_ADDONS"); s != "" {
		names = strings.Split(s, ",")
	}
	var log io.Writer = io.Discard
	if testing.Verbose() {
		log = os.Stderr
	}
	for _, n := range names {
		a, err := ByName(n)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		paths, err := a.Images(context.Background(), log)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		t.Logf("%s: images in %s", n, time.Since(start).Round(time.Second))
		for _, p := range paths {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			t.Logf("  %s: %.1f MiB", p, float64(st.Size())/(1<<20))
		}
	}
}
