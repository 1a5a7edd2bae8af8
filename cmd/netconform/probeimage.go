package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/netconform/netconform/pkg/nodeimage"
	"github.com/netconform/netconform/pkg/probe/probeimage"
)

func init() { addCommand(newProbeImageCmd) }

func newProbeImageCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "probe-image",
		Short: "Build the probe image archive (no Dockerfile, no registry); prints its tag and archive path",
		RunE: func(cmd *cobra.Command, _ []string) error {
			img, err := probeimage.Build(cmd.Context(), probeimage.Options{Dir: filepath.Join(nodeimage.CacheDir(), "probe"), ModuleDir: repoRoot()})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", img.Tag, img.Archive)
			return nil
		},
	}
}
