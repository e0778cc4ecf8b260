// Package e2e holds end-to-end tests that drive runwayctl as a user would: they build the
// binary once, run it as a subprocess from the repository root (or from a repository of their
// own) and check only what a user sees: its output, its FILE:LINE:COL problems and its exit
// status. Nothing here reaches into runwayctl's internals; `go test ./...` in this module runs
// them (they need the Go toolchain, to build runwayctl).
package e2e
