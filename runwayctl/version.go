package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit are set at build time:
//
//	go build -ldflags "-X main.version=$V -X main.commit=$C"
//
// Without them, the module version and VCS revision Go recorded in the binary are used.
var (
	version = "dev"
	commit  = "unknown"
)

// buildVersion returns the version and commit of this binary: the -ldflags values, else what
// the build info has (the module version of `go install …@v1.2.3`, the vcs.revision of a
// build in a git checkout), else "dev" and "unknown".
func buildVersion(info *debug.BuildInfo, ok bool) (v, c string) {
	v, c = version, commit
	if !ok || info == nil {
		return v, c
	}
	if v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	if c == "unknown" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				c = s.Value
			}
		}
	}
	return v, c
}

func newVersionCmd(e *cmdEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print runwayctl's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v, c := buildVersion(debug.ReadBuildInfo())
			_, err := fmt.Fprintf(e.out, "runwayctl %s (commit %s, %s)\n", v, c, runtime.Version())
			return err
		},
	}
}
