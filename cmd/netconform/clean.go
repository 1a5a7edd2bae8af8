package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"
	kind "sigs.k8s.io/kind/pkg/cluster"

	"github.com/netconform/netconform/internal/progress"
	"github.com/netconform/netconform/internal/run"
	"github.com/netconform/netconform/pkg/probe"
	"github.com/netconform/netconform/pkg/testbed"
)

func init() { addCommand(newCleanCmd) }

func newCleanCmd() *cobra.Command {
	var provider string
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Delete every kind cluster netconform created (named netconform-*) and any external client an interrupted run left",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := removeResidentClients(cmd.Context(), providerName(provider)); err != nil {
				return err
			}
			opt := kind.ProviderWithDocker()
			if providerName(provider) == "podman" {
				opt = kind.ProviderWithPodman()
			}
			names, err := kind.NewProvider(opt).List()
			if err != nil {
				return err
			}
			for _, n := range names {
				if strings.HasPrefix(n, "netconform-") {
					o := testbed.Options{RepoRoot: repoRoot(), Engine: providerName(provider), Name: n}
					if err := testbed.Down(cmd.Context(), o); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "", "node provider: docker or podman")
	return cmd
}

// removeResidentClients removes the suites' resident external clients
// (probe.Resident) that an interrupted run left running.
func removeResidentClients(ctx context.Context, engine string) error {
	if _, err := exec.LookPath(engine); err != nil {
		return nil // no engine, so no containers either
	}
	out, err := run.Command(engine, "ps", "-aq", "--filter", "label="+probe.ResidentLabel).Output(ctx)
	if err != nil {
		return fmt.Errorf("listing external clients: %w", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return nil
	}
	if _, err := run.Command(engine, append([]string{"rm", "-f"}, ids...)...).Output(ctx); err != nil {
		return fmt.Errorf("removing %d external client(s): %w", len(ids), err)
	}
	progress.Printf("removed %d external client container(s) left by an interrupted run", len(ids))
	return nil
}
