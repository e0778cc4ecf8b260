package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"runwayjobs.dev/shared/manifest"
)

func newSchemaCmd(e *cmdEnv) *cobra.Command {
	var format *formatFlag
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the RunwayJob JSON Schema (draft 2020-12) that validate uses",
		Long: `Print the JSON Schema (draft 2020-12) that runwayctl validate itself uses, for editors:
save it and add "# yaml-language-server: $schema=<path>" to the top of .runway/runway.yml.
--format markdown prints the manifest reference (docs/manifest.md) generated from it.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if format.value == "markdown" {
				_, err := fmt.Fprint(e.out, manifest.Reference())
				return err
			}
			_, err := e.out.Write(manifest.SchemaJSON())
			return err
		},
	}
	format = addFormatFlag(cmd, "json (the schema) or markdown (the reference)", "json", "markdown")
	return cmd
}
