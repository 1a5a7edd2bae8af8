package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/pkg/cluster"
	"github.com/netconform/netconform/pkg/mutant"
	"github.com/netconform/netconform/pkg/nodeimage"
	"github.com/netconform/netconform/pkg/ociimage"
	"github.com/netconform/netconform/pkg/testbed"
)

func init() { addCommand(newMutantsCmd) }

// rollBudget bounds a kube-proxy roll-out: images are already on the nodes,
// so it is pod restarts and a first sync.
const rollBudget = 3 * time.Minute

func newMutantsCmd() *cobra.Command {
	var f suiteFlags
	var faultList string
	cmd := &cobra.Command{
		Use:   "mutants",
		Short: "Prove the suites catch broken proxies: roll kube-proxies built with one known fault each onto the cluster and run the specs each fault must fail",
		Long: `mutants runs, on one cluster ($KUBECONFIG's, else CLUSTER_CONFIG's):
  1. the baseline: the specs of every selected fault, with the cluster's own kube-proxy; it must pass;
  2. per fault: kube-proxy built from k8s.io/kubernetes at the cluster's version with the fault's
     source edit, in an image derived from the cluster's own kube-proxy image, rolled onto every
     node; then the fault's specs (its area labels) and the smoke spec.
The cluster's own kube-proxy is put back at the end, also after an interrupt. Results go to
reports/<run>/mutants.json and detection.md; the run fails if the baseline fails or a fault
goes uncaught.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, o := cmd.Context(), f.options()
			runID := time.Now().UTC().Format("20060102-150405") + "-mutants"
			dir, _ := filepath.Abs(filepath.Join(f.reports, runID))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			info, release, err := acquireTestbed(ctx, o, f.keep)
			defer release()
			if err != nil {
				return err
			}
			if info.KindCluster == "" {
				return fmt.Errorf("mutants load kube-proxy images into the nodes, so they need a kind cluster on this host; %s is not one", info.Kubeconfig)
			}
			faults, err := selectFaults(info.ProxyMode, faultList)
			if err != nil {
				return err
			}
			tbPath := filepath.Join(dir, "testbed.json")
			if err := info.Write(tbPath); err != nil {
				return err
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
			if err != nil {
				return err
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			sv, err := cs.Discovery().ServerVersion()
			if err != nil {
				return fmt.Errorf("reading the cluster's Kubernetes version: %w", err)
			}
			version, _, _ := strings.Cut(sv.GitVersion, "+")
			k := cluster.NewKind(info.KindCluster, info.Engine, testbed.StateDir(o.RepoRoot))
			kp, err := mutant.FindKubeProxy(ctx, cs, k)
			if err != nil {
				return err
			}
			progress.Printf("mutants: %d faults for kube-proxy %s in %s mode on %s (its image %s, binary %s)", len(faults), version, info.ProxyMode, info.KindCluster, kp.Image, kp.Binary)
			defer func() {
				// The specs' namespaces, left terminating by every suite run.
				wctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				if err := progress.Step("waiting for the specs' namespaces to go", func() error { return awaitSpecNamespaces(wctx, cs) }); err != nil {
					progress.Printf("%v; `kubectl delete ns -l %s` removes them", err, testbed.SpecNamespaceLabel)
				}
			}()
			defer func() {
				// A fresh context: an interrupted run still restores kube-proxy.
				rctx, cancel := context.WithTimeout(context.Background(), rollBudget)
				defer cancel()
				if err := progress.Step("restoring kube-proxy "+kp.Image, func() error { return kp.Restore(rctx, rollBudget) }); err != nil {
					progress.Printf("RESTORE FAILED: %v; set DaemonSet kube-system/kube-proxy back to image %s by hand", err, kp.Image)
				}
			}()

			work := filepath.Join(nodeimage.CacheDir(), "mutants", version)
			base := filepath.Join(work, "base-"+safeName(kp.Image)+".tar")
			if _, err := os.Stat(base); err != nil {
				if err := progress.Step("exporting the cluster's kube-proxy image "+kp.Image, func() error { return kp.ExportBase(ctx, base) }); err != nil {
					return err
				}
			}
			var ws *mutant.Workspace
			if err := progress.Step("copying k8s.io/kubernetes@"+version+" for the faults' edits", func() error {
				var err error
				ws, err = mutant.OpenWorkspace(ctx, version, nodeimage.CacheDir())
				return err
			}); err != nil {
				return err
			}
			buildLog, err := os.Create(filepath.Join(dir, "build.log"))
			if err != nil {
				return err
			}
			defer buildLog.Close()

			// Mutants are built one after another in the background while
			// the previous one's specs run (those mostly wait on the cluster).
			type built struct {
				fault          mutant.Fault
				archive, image string
				took           time.Duration
				err            error
			}
			ch := make(chan built, 1)
			bctx, stopBuilds := context.WithCancel(ctx)
			defer stopBuilds()
			baseDigest, err := ociimage.FileDigest(base)
			if err != nil {
				return err
			}
			go func() {
				defer close(ch)
				for _, f := range faults {
					start := time.Now()
					b := built{fault: f, image: kp.Tag(f), archive: filepath.Join(work, "images", safeName(f.Name)+".tar")}
					bin := filepath.Join(work, "bin", safeName(f.Name), "kube-proxy")
					key := mutant.ImageKey(version, f, baseDigest)
					if mutant.Cached(b.archive, key) {
						progress.Printf("kube-proxy with fault %s: reusing %s (built earlier from the same version, edits and base image)", f.Name, b.archive)
					} else {
						b.err = progress.Step("building kube-proxy with fault "+f.Name, func() error {
							if err := ws.Build(bctx, f, bin, buildLog); err != nil {
								return err
							}
							if err := kp.Derive(base, bin, b.image, b.archive); err != nil {
								return err
							}
							return mutant.MarkBuilt(b.archive, key)
						})
					}
					b.took = time.Since(start)
					select {
					case ch <- b:
					case <-bctx.Done():
						return
					}
				}
			}()

			compiled, err := compileSuites(ctx, o.RepoRoot, f.suites)
			if err != nil {
				return err
			}
			defer compiled.Remove()

			var results []mutant.Result
			save := func() error {
				data, _ := json.MarshalIndent(results, "", "  ")
				if err := os.WriteFile(filepath.Join(dir, "mutants.json"), data, 0o644); err != nil {
					return err
				}
				var b strings.Builder
				fmt.Fprintf(&b, "Kubernetes %s, kube-proxy %s mode, cluster %s (%s), %s\n\n", version, info.ProxyMode, info.KindCluster, info.Cell, time.Now().UTC().Format(time.RFC3339))
				mutant.WriteTable(&b, results)
				return os.WriteFile(filepath.Join(dir, "detection.md"), []byte(b.String()), 0o644)
			}
			runOne := func(r mutant.Result) mutant.Result {
				sub := filepath.Join(dir, safeName(r.Fault))
				_ = os.MkdirAll(sub, 0o755)
				r.Reports = sub
				// The suites leave their namespaces terminating (about 10 s
				// at the end of each run); they are awaited once, below.
				out, err := runSuites(ctx, suiteRun{repoRoot: o.RepoRoot, testbed: tbPath, dir: sub, labelFilter: r.LabelFilter, suites: compiled, procs: f.procs,
					env: []string{testbed.LeaveNamespacesEnv + "=1"}}, cmd.OutOrStdout(), cmd.ErrOrStderr())
				if err != nil {
					r.Error = err.Error()
					return r
				}
				r.Judge(out.reports)
				if out.exit == nil && len(r.Failed) > 0 {
					r.Error = "Ginkgo passed although specs failed"
				}
				return r
			}

			// The baseline: every area the faults target, with the cluster's own kube-proxy.
			var areas []string
			for _, f := range faults {
				for _, a := range f.Areas {
					if !slices.Contains(areas, a) {
						areas = append(areas, a)
					}
				}
			}
			start := time.Now()
			baseline := runOne(mutant.Result{Fault: mutant.BaselineName, Mode: info.ProxyMode, Areas: areas, Image: kp.Image,
				LabelFilter: mutant.Fault{Areas: areas}.LabelFilter()})
			baseline.Duration = time.Since(start)
			results = append(results, baseline)
			if err := save(); err != nil {
				return err
			}
			if baseline.Error != "" || !baseline.Caught {
				return fmt.Errorf("the baseline (the cluster's own kube-proxy %s) did not pass (%d failed of %d; %s): a mutant's failures would mean nothing; see %s",
					kp.Image, len(baseline.Failed), baseline.Ran, baseline.Error, baseline.Reports)
			}

			for b := range ch {
				r := mutant.Result{Fault: b.fault.Name, Mode: info.ProxyMode, Class: b.fault.Class, Areas: b.fault.Areas,
					LabelFilter: b.fault.LabelFilter(), Image: b.image, Build: b.took}
				start := time.Now()
				switch {
				case b.err != nil:
					r.Error = b.err.Error()
				default:
					if err := progress.Step("rolling kube-proxy onto "+b.image, func() error { return kp.Roll(ctx, b.archive, b.image, rollBudget) }); err != nil {
						r.Error = err.Error()
						break
					}
					r = runOne(r)
				}
				r.Duration = time.Since(start)
				results = append(results, r)
				if err := save(); err != nil {
					return err
				}
				verdict := "CAUGHT"
				switch {
				case r.Error != "":
					verdict = "NOT JUDGED (" + r.Error + ")"
				case !r.Caught:
					verdict = "NOT CAUGHT"
				}
				progress.Printf("fault %s: %s (%d of %d specs failed; areas %v caught by %v)", r.Fault, verdict, len(r.Failed), r.Ran, r.Areas, r.CaughtBy)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
			var missed []string
			for _, r := range results[1:] {
				if !r.Caught || r.Error != "" {
					missed = append(missed, r.Fault)
				}
			}
			progress.Printf("mutants: %s/mutants.json and detection.md", dir)
			if len(missed) > 0 {
				return fmt.Errorf("%d of %d faults were not caught, or could not be built or judged: %s; see %s/detection.md", len(missed), len(results)-1, strings.Join(missed, ", "), dir)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&faultList, "faults", os.Getenv("FAULTS"), "comma-separated fault names (default: every fault for the cluster's proxy mode) ($FAULTS)")
	return cmd
}

// selectFaults returns the named faults, or every fault for mode; a fault
// for another mode is an error (its code does not run on this cluster).
func selectFaults(mode, list string) ([]mutant.Fault, error) {
	if mode != "iptables" && mode != "nftables" {
		return nil, fmt.Errorf("kube-proxy mode %q: faults exist for iptables and nftables mode only", mode)
	}
	if strings.TrimSpace(list) == "" {
		return mutant.ForMode(mode), nil
	}
	var out []mutant.Fault
	for _, name := range strings.Split(list, ",") {
		f, err := mutant.Lookup(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		if f.Mode != "" && f.Mode != mode {
			return nil, fmt.Errorf("fault %s changes kube-proxy's %s mode, but this cluster's kube-proxy runs in %s mode", f.Name, f.Mode, mode)
		}
		out = append(out, f)
	}
	return out, nil
}

// awaitSpecNamespaces waits until no namespace a spec created is left.
func awaitSpecNamespaces(ctx context.Context, cs kubernetes.Interface) error {
	var left []string
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: testbed.SpecNamespaceLabel + "=true"})
		if err != nil {
			return false, nil
		}
		left = left[:0]
		for _, ns := range list.Items {
			left = append(left, ns.Name)
		}
		return len(left) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("namespaces still terminating: %v", left)
	}
	return nil
}

// safeName makes a string usable as a file name.
func safeName(s string) string {
	return strings.NewReplacer("/", "-", ":", "_", "@", "_").Replace(s)
}
