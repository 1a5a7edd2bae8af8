// Command netconform is the user-facing entry point: the make targets call
// it to prepare the host, build node images, manage clusters, and anyone can
// call it to trace a packet through saved rules. Each subcommand lives in its
// own file and registers itself with addCommand from an init function, so
// this file stays a thin root.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

var subcommands []func() *cobra.Command

// addCommand registers a subcommand constructor; call it from init.
func addCommand(f func() *cobra.Command) { subcommands = append(subcommands, f) }

func main() {
	root := &cobra.Command{
		Use:           "netconform",
		Short:         "Kubernetes Service data-plane conformance: clusters, images and rule traces",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	// Ctrl-C cancels the context; steps kill their child process groups and
	// clean up what they were making.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "netconform: error: %v\n", err)
		os.Exit(1)
	}
}
