package nodeimage

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/mod/semver"

	"github.com/netconform/netconform/internal/run"
)

// MinMinor is the oldest Kubernetes minor the node image builder supports:
// the versioned cluster configs start there.
const MinMinor = "v1.34"

// Available lists the k8s.io/kubernetes versions the Go module proxy serves,
// from MinMinor on. Only these can be built offline.
func Available(ctx context.Context) ([]string, error) {
	return moduleVersions(ctx, "k8s.io/kubernetes", MinMinor)
}

// moduleVersions asks the module proxy which versions of a module it serves
// (`go list -m -versions`), keeping those at or above min.
func moduleVersions(ctx context.Context, module, min string) ([]string, error) {
	out, err := (&run.Cmd{Name: "go", Args: []string{"list", "-m", "-versions", module}, Dir: "/"}).Output(ctx)
	if err != nil {
		return nil, fmt.Errorf("asking the Go module proxy which versions of %s it serves: %w", module, err)
	}
	var vs []string
	for _, v := range strings.Fields(string(out))[1:] {
		if semver.Prerelease(v) == "" && (min == "" || semver.Compare(v, min) >= 0) {
			vs = append(vs, v)
		}
	}
	return vs, nil
}

// CheckVersion returns a clear error when version cannot be built here.
func CheckVersion(ctx context.Context, version string) error {
	if !semver.IsValid(version) || semver.Prerelease(version) != "" {
		return fmt.Errorf("K8S_VERSION %q is not a release version like v1.34.4", version)
	}
	avail, err := Available(ctx)
	if err != nil {
		return err
	}
	for _, v := range avail {
		if v == version {
			return nil
		}
	}
	return fmt.Errorf("Kubernetes %s cannot be built here: the Go module proxy does not serve k8s.io/kubernetes@%s. Versions that can be built: %s",
		version, version, strings.Join(avail, ", "))
}

// pickServed chooses which version of a component to build when kubeadm wants
// `want`: want itself when served, else the oldest served version above it
// (same major), else the newest served. The choice is reported, and the
// image is tagged with what was really built.
func pickServed(want string, served []string) string {
	for _, v := range served {
		if v == want {
			return v
		}
	}
	for _, v := range served {
		if semver.Compare(v, want) > 0 && semver.Major(v) == semver.Major(want) {
			return v
		}
	}
	if len(served) > 0 {
		return served[len(served)-1]
	}
	return ""
}
