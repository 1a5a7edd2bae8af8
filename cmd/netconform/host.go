package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/netconform/netconform/pkg/host"
)

func init() { addCommand(newHostCmd) }

func newHostCmd() *cobra.Command {
	var provider string
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Make sure this host can run kind nodes (engine running; runtime shim where capabilities are short)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := host.Ensure(cmd.Context(), providerName(provider), repoRoot())
			if err != nil {
				return err
			}
			shim := "not needed"
			if rep.ShimNeeded {
				shim = "in use (" + host.ShimPath + ")"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "netconform: host ready: engine %s, runtime shim %s\n", rep.Engine, shim)
			return nil
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "", "node provider: docker or podman (default: $KIND_EXPERIMENTAL_PROVIDER, else docker)")
	return cmd
}
