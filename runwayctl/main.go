// Command runwayctl is the Runway Jobs CLI that service owners and their CI use: validate
// manifests, print the manifest schema, explain cron schedules (and, as the platform grows,
// deploy, run and watch jobs).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// exitError carries an exit code for a failure that has already been reported to the user.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr, time.Now).ExecuteContext(ctx)
	stop()
	var ee exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "runwayctl:", err)
		os.Exit(2)
	}
}

// newRoot builds the command tree writing to stdout and stderr, with now as the clock.
func newRoot(stdout, stderr io.Writer, now func() time.Time) *cobra.Command {
	root := &cobra.Command{
		Use:           "runwayctl",
		Short:         "Runway Jobs: validate, deploy and run jobs on Cloud Run",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newValidateCmd(now), newSchemaCmd(), newScheduleCmd(now), newEmulatorCmd(now), newDeployCmd(), newPlanCmd(), newRunCmd(), newDevCmd(now), newStatusCmd(now), newLogsCmd())
	return root
}
