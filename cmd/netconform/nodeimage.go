package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/netconform/netconform/pkg/host"
	"github.com/netconform/netconform/pkg/nodeimage"
)

func init() { addCommand(newNodeImageCmd) }

func newNodeImageCmd() *cobra.Command {
	var version, provider string
	var offline bool
	cmd := &cobra.Command{
		Use:   "node-image",
		Short: "Get a kind node image for a Kubernetes version: kind's upstream image when it can be pulled, else built offline",
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := ensureNodeImage(cmd, version, providerName(provider), offline)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Image)
			return nil
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "Kubernetes version, e.g. v1.34.4 (required)")
	cmd.Flags().StringVar(&provider, "provider", "", "node provider: docker or podman")
	cmd.Flags().BoolVar(&offline, "offline", os.Getenv("NETCONFORM_OFFLINE") == "1", "build offline even when kind's upstream image could be pulled ($NETCONFORM_OFFLINE=1)")
	_ = cmd.MarkFlagRequired("version")
	return cmd
}

// ensureNodeImage prepares the host and gets the node image, logging the
// build's details to a file under the cache.
func ensureNodeImage(cmd *cobra.Command, version, provider string, offline bool) (*nodeimage.Result, error) {
	rep, err := host.Ensure(cmd.Context(), provider, repoRoot())
	if err != nil {
		return nil, err
	}
	var log io.Writer = io.Discard
	if f, err := nodeimage.CreateLog(version); err == nil {
		defer f.Close()
		log = f
		fmt.Fprintf(cmd.ErrOrStderr(), "netconform: node image build log: %s\n", f.Name())
	}
	return nodeimage.Ensure(cmd.Context(), nodeimage.Options{
		Version: version, Engine: provider, RepoRoot: repoRoot(), Shim: rep.ShimNeeded, Offline: offline, Log: log,
	})
}
