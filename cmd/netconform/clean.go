package main

import (
	"strings"

	"github.com/spf13/cobra"
	kind "sigs.k8s.io/kind/pkg/cluster"

	"github.com/netconform/netconform/pkg/testbed"
)

func init() { addCommand(newCleanCmd) }

func newCleanCmd() *cobra.Command {
	var provider string
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Delete every kind cluster netconform created (named netconform-*)",
		RunE: func(cmd *cobra.Command, _ []string) error {
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
