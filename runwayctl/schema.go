package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"runwayjobs.dev/shared/manifest"
)

func newSchemaCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the RunwayJob JSON Schema (draft 2020-12) that validate uses",
		Long: `Print the JSON Schema (draft 2020-12) that runwayctl validate itself uses, for editors:
save it and add "# yaml-language-server: $schema=<path>" to the top of .runway/runway.yml.
--format markdown prints the manifest reference (docs/manifest.md) generated from it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch format {
			case "json":
				_, err := cmd.OutOrStdout().Write(manifest.SchemaJSON())
				return err
			case "markdown":
				_, err := fmt.Fprint(cmd.OutOrStdout(), manifest.Reference())
				return err
			}
			return fmt.Errorf("--format must be json or markdown, not %q", format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "json", "json (the schema) or markdown (the reference)")
	return cmd
}
