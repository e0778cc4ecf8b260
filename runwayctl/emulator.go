package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"runwayjobs.dev/shared/emulator"
	emuclock "runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/gcp"
)

func newEmulatorCmd(e *cmdEnv) *cobra.Command {
	var (
		opts        emulator.Options
		manual      bool
		start       string
		opDelay     time.Duration
		ingestDelay time.Duration
	)
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Serve the local Google Cloud (Cloud Run, Scheduler, Monitoring, Pub/Sub) on one address",
		Long: `Serve the embedded emulator of Cloud Run Admin v2 (jobs run as local processes: images
are not pulled), Cloud Scheduler v1, Cloud Monitoring v3 (the Cloud Run job metrics) and
Pub/Sub (with Eventarc-style delivery of push subscriptions as CloudEvents), gRPC and HTTP on
one address. Point the functions and runwayctl at it with RUNWAY_EMULATOR_HOST=<address>.

Admin endpoints on the same address:
  GET  /emulator/v1/healthz
  GET  /emulator/v1/clock, POST /emulator/v1/clock:advance {"duration":"1h"}  (--manual-clock)
  GET|POST|DELETE /emulator/v1/faults, PUT /emulator/v1/faults/delivery
  GET|POST|DELETE /emulator/v1/iam/deny {"permissions":["pubsub.topics.publish"],"resource":"projects/P/topics/T"}
    (every permission is granted until a deny rule takes it away; see docs/emulator.md)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manual {
				t := e.hostNow()
				if start != "" {
					var err error
					if t, err = time.Parse(time.RFC3339, start); err != nil {
						return fmt.Errorf("--start %q: want an RFC3339 time", start)
					}
				}
				opts.Clock = emuclock.NewManual(t)
			}
			opts.OpDelay, opts.IngestDelay = opDelay, ingestDelay
			emu, err := emulator.Start(cmd.Context(), opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.out, "runway emulator ready on %s (export %s=%s)\n", emu.Addr(), gcp.EmulatorHostEnv, emu.Addr())
			<-cmd.Context().Done()
			return emu.Close()
		},
	}
	cmd.Flags().StringVar(&opts.Addr, "addr", "127.0.0.1:8085", "host:port to serve on (port 0: any free port)")
	cmd.Flags().BoolVar(&manual, "manual-clock", false, "run on a clock that moves only through POST /emulator/v1/clock:advance")
	cmd.Flags().StringVar(&start, "start", "", "with --manual-clock: the starting time (RFC3339; default now)")
	cmd.Flags().DurationVar(&opDelay, "op-delay", 100*time.Millisecond, "how long Cloud Run create/update/delete operations take")
	cmd.Flags().DurationVar(&ingestDelay, "ingest-delay", 0, "how long Monitoring points take to become visible")
	cmd.Flags().StringVar(&opts.LogDir, "log-dir", "", "directory for task attempt output (default: a temporary directory)")
	return cmd
}
