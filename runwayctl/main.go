// Command runwayctl is the Runway Jobs CLI that service owners and their CI use: validate
// manifests, print the manifest schema, explain cron schedules, deploy, run and watch jobs,
// and run the whole platform locally (dev, emulator). Every command gets its dependencies
// from one cmdEnv (cmdenv.go).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := newCmdEnv(os.Stdout, os.Stderr, os.Getenv, time.Now)
	err := newRoot(e).ExecuteContext(ctx)
	stop()
	_ = e.Close() // the command's outcome is decided; closing connections changes nothing
	os.Exit(exitCode(os.Stderr, err))
}

// newRoot builds the command tree on e.
func newRoot(e *cmdEnv) *cobra.Command {
	root := &cobra.Command{
		Use:           "runwayctl",
		Short:         "Runway Jobs: validate, deploy and run jobs on Cloud Run",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(e.out)
	root.SetErr(e.errOut)
	root.AddCommand(newValidateCmd(e), newSchemaCmd(e), newScheduleCmd(e), newEmulatorCmd(e), newDeployCmd(e), newPlanCmd(e),
		newRunCmd(e), newDevCmd(e), newStatusCmd(e), newLogsCmd(e), newVersionCmd(e), newDoctorCmd(e), newConsoleCmd(e))
	return root
}
