package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/netconform/netconform/pkg/testbed"
)

func init() { addCommand(newClusterCmd) }

func newClusterCmd() *cobra.Command {
	var o testbed.Options
	var provider string
	cmd := &cobra.Command{Use: "cluster", Short: "Create, reuse or delete the kind cluster of a matrix cell"}
	flags := func(c *cobra.Command) {
		c.Flags().StringVar(&o.Config, "config", os.Getenv("CLUSTER_CONFIG"), "kind config of a matrix cell, e.g. clusters/v1.34/iptables.yaml ($CLUSTER_CONFIG; default: newest iptables cell)")
		c.Flags().StringVar(&o.Name, "name", os.Getenv("CLUSTER_NAME"), "cluster name ($CLUSTER_NAME; default derived from the cell)")
		c.Flags().StringVar(&provider, "provider", "", "node provider: docker or podman (default $KIND_EXPERIMENTAL_PROVIDER, else docker)")
	}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create (or reuse an identical) cluster; prints 'export KUBECONFIG=...' last",
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.RepoRoot, o.Engine = repoRoot(), providerName(provider)
			o.Offline = os.Getenv("NETCONFORM_OFFLINE") == "1"
			info, err := testbed.Up(cmd.Context(), o)
			if err != nil {
				return err
			}
			path := filepath.Join(filepath.Dir(info.Kubeconfig), "testbed.json")
			if err := info.Write(path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "netconform: cluster %s ready (cell %s, node image %s, proxy mode %s); testbed description %s\n",
				info.KindCluster, info.Cell, info.NodeImage, info.ProxyMode, path)
			fmt.Fprintf(cmd.OutOrStdout(), "export KUBECONFIG=%s\n", info.Kubeconfig)
			return nil
		},
	}
	del := &cobra.Command{
		Use:   "delete",
		Short: "Delete the cell's cluster and its kubeconfig",
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.RepoRoot, o.Engine = repoRoot(), providerName(provider)
			return testbed.Down(cmd.Context(), o)
		},
	}
	flags(create)
	flags(del)
	cmd.AddCommand(create, del)
	return cmd
}
