package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"runwayjobs.dev/shared/manifest"
)

func TestSchemaJSON(t *testing.T) {
	for _, args := range [][]string{{"schema"}, {"schema", "--format", "json"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code := execute(t, args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if !bytes.Equal([]byte(stdout), manifest.SchemaJSON()) {
				t.Errorf("output differs from manifest.SchemaJSON()")
			}
			var schema struct {
				Schema   string         `json:"$schema"`
				ID       string         `json:"$id"`
				Required []string       `json:"required"`
				Props    map[string]any `json:"properties"`
			}
			dec := json.NewDecoder(strings.NewReader(stdout))
			if err := dec.Decode(&schema); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
			if dec.More() {
				t.Errorf("output holds more than one JSON value")
			}
			if schema.Schema != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %q, want draft 2020-12", schema.Schema)
			}
			for _, field := range []string{"apiVersion", "kind", "metadata", "spec"} {
				if _, ok := schema.Props[field]; !ok {
					t.Errorf("the schema does not describe %s", field)
				}
			}
		})
	}
}

func TestSchemaMarkdownIsTheCommittedReference(t *testing.T) {
	stdout, stderr, code := execute(t, "schema", "--format", "markdown")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if stdout != manifest.Reference() {
		t.Errorf("output differs from manifest.Reference()")
	}
	want, err := os.ReadFile("../docs/manifest.md")
	if err != nil {
		t.Fatalf("docs/manifest.md: %v; run make docs", err)
	}
	if stdout != string(want) {
		t.Errorf("docs/manifest.md is not what runwayctl schema --format markdown prints; run make docs")
	}
}

func TestSchemaUnknownFormat(t *testing.T) {
	stdout, stderr, code := execute(t, "schema", "--format", "yaml")
	if code != 2 || stdout != "" {
		t.Errorf("exit %d, stdout %q; want 2 and nothing", code, stdout)
	}
	assertLines(t, "stderr", stderr, []string{`runwayctl: invalid argument "yaml" for "--format" flag: must be json or markdown`})
}
