package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"runwayjobs.dev/shared/schedule"
)

func newScheduleCmd(e *cmdEnv) *cobra.Command {
	var tz, after string
	var count int
	cmd := &cobra.Command{
		Use:   "schedule EXPR",
		Short: "Describe a cron schedule and print its next run times (UTC)",
		Long: `Describe a 5-field cron schedule (or @daily-style descriptor) in words, then print the
next COUNT run times strictly after --after (default: now, on the platform's clock: the
emulator's when RUNWAY_EMULATOR_HOST is set), one RFC3339 UTC time per line.
The schedule is read in --time-zone, as spec.time_zone does. Invalid expressions exit 1.`,
		Example: `  runwayctl schedule "30 6-16/4 * * 1-5" --time-zone Europe/Berlin --count 5`,
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			from := e.now()
			if after != "" {
				t, err := time.Parse(time.RFC3339, after)
				if err != nil {
					return fmt.Errorf("--after %q: want an RFC3339 time such as 2026-11-26T15:04:05Z", after)
				}
				from = t
			}
			if count < 1 || count > 1000 {
				return fmt.Errorf("--count must be between 1 and 1000, not %d", count)
			}
			s, err := schedule.Parse(args[0], tz)
			if err != nil {
				fmt.Fprintln(e.errOut, err)
				return exitError{code: exitFailed}
			}
			out := e.out
			fmt.Fprintln(out, s.Describe())
			for _, t := range s.NextN(from, count) {
				fmt.Fprintln(out, t.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tz, "time-zone", "Etc/UTC", "IANA time zone the schedule is read in")
	cmd.Flags().StringVar(&after, "after", "", "print slots strictly after this RFC3339 time (default: now)")
	cmd.Flags().IntVar(&count, "count", 5, "how many slots to print")
	return cmd
}
