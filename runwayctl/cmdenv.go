package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// Exit statuses of runwayctl. Every command exits with one of these; README.md and the
// command's help say which applies when.
const (
	exitOK = 0
	// exitFailed: what was asked was checked and failed: an invalid manifest or schedule, a
	// refused deploy, a failed or cancelled execution, a workload not in the inventory.
	exitFailed = 1
	// exitNotDone: runwayctl did not do what was asked: bad flags or arguments, an
	// unreachable API; for `run`, also a request that was refused (a workload not in the
	// inventory, a broken rule), skipped or missed.
	exitNotDone = 2
)

// exitError carries an exit code. Without err the failure has already been reported to the
// user; with err, main prints "runwayctl: " and err.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e exitError) Unwrap() error { return e.err }

// exitCode reports err as main does (the error after "runwayctl: " unless it was already
// reported) and returns the process's exit status.
func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "runwayctl:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "runwayctl:", err)
	return exitNotDone
}

// cmdEnv is what every command shares, as gh's cmdutil.Factory: the output streams, the
// environment (read only through getenv), the host's and the platform's clocks, the
// inventory, the Google Cloud clients (dialled on first use, one set per project) and the
// durable store. newRoot builds one per invocation; commands take it in newXCmd(e) and read
// their dependencies from it when they run, never at flag registration. Close releases
// what was opened.
type cmdEnv struct {
	out, errOut io.Writer
	getenv      func(string) string
	// hostNow is this machine's clock: where there is no platform yet (the starting time of
	// runwayctl emulator and dev's manual clock), and what now falls back to without an
	// emulator.
	hostNow func() time.Time

	inv inventoryFlag // --inventory, registered by addInventoryFlag

	mu          sync.Mutex
	inventory   *inventory.Inventory
	clients     map[string]*allclients.Clients
	store       state.Store
	storeErr    error
	storeOpened bool
	platformNow func() time.Time
}

// newCmdEnv returns the environment of one runwayctl invocation. getenv is os.Getenv in
// main; tests pass a map's lookup.
func newCmdEnv(out, errOut io.Writer, getenv func(string) string, hostNow func() time.Time) *cmdEnv {
	return &cmdEnv{out: out, errOut: errOut, getenv: getenv, hostNow: hostNow, clients: map[string]*allclients.Clients{}}
}

// gcpConfig is the world the clients of project talk to: the emulator when
// RUNWAY_EMULATOR_HOST is set, Google Cloud otherwise.
func (e *cmdEnv) gcpConfig(project string) gcp.Config {
	return gcp.ConfigFromEnv(func(k string) (string, bool) { v := e.getenv(k); return v, v != "" }, project)
}

// now is the platform's clock: Google Cloud's (the host's) in production, the emulator's when
// RUNWAY_EMULATOR_HOST is set, so that under a manual clock "next run" and "since" mean what
// the platform will do. Use it wherever a command reasons about the platform's time.
func (e *cmdEnv) now() time.Time {
	e.mu.Lock()
	if e.platformNow == nil {
		if cfg := e.gcpConfig(""); cfg.EmulatorHost != "" {
			e.platformNow = cfg.Clock()
		} else {
			e.platformNow = e.hostNow
		}
	}
	now := e.platformNow
	e.mu.Unlock()
	return now()
}

// inventoryFlag is the value of --inventory: a path or gs://bucket/object; unset means
// $RUNWAY_INVENTORY (set to "" on purpose, it means no inventory).
type inventoryFlag struct {
	value string
	set   bool
}

func (f *inventoryFlag) String() string     { return f.value }
func (f *inventoryFlag) Set(v string) error { f.value, f.set = v, true; return nil }
func (f *inventoryFlag) Type() string       { return "string" }

// addInventoryFlag registers --inventory on cmd, read by inventoryLocation.
func (e *cmdEnv) addInventoryFlag(cmd *cobra.Command) {
	cmd.Flags().Var(&e.inv, "inventory", "inventory.yml: a path or gs://bucket/object (default $"+platform.EnvInventory+")")
}

// inventoryLocation is --inventory, else $RUNWAY_INVENTORY.
func (e *cmdEnv) inventoryLocation() string {
	if e.inv.set {
		return e.inv.value
	}
	return e.getenv(platform.EnvInventory)
}

// loadInventory reads and validates the inventory once.
func (e *cmdEnv) loadInventory(ctx context.Context) (*inventory.Inventory, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inventory != nil {
		return e.inventory, nil
	}
	loc := e.inventoryLocation()
	if loc == "" {
		return nil, fmt.Errorf("no inventory: pass --inventory or set %s", platform.EnvInventory)
	}
	inv, err := inventory.Open(ctx, loc, e.gcpConfig(""))
	if err != nil {
		return nil, err
	}
	e.inventory = inv
	return inv, nil
}

// job returns the job workload name of the inventory. A name that is not a job of the
// inventory is an exitError with code (each command documents its own) saying so in the
// deploy and trigger functions' words; other failures (no inventory, unreadable) are plain
// errors.
func (e *cmdEnv) job(ctx context.Context, name string, code int) (inventory.Workload, error) {
	inv, err := e.loadInventory(ctx)
	if err != nil {
		return inventory.Workload{}, err
	}
	w, err := inv.Job(name)
	if err != nil {
		return w, exitError{code: code, err: fmt.Errorf("%w (%s)", err, inv.File)}
	}
	return w, nil
}

// gcpClients returns the clients of project, dialled on first use and shared by every later
// call; Close closes them.
func (e *cmdEnv) gcpClients(ctx context.Context, project string) (*allclients.Clients, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cl, ok := e.clients[project]; ok {
		return cl, nil
	}
	cl, err := allclients.Dial(ctx, e.gcpConfig(project), gcp.All)
	if err != nil {
		return nil, err
	}
	e.clients[project] = cl
	return cl, nil
}

// openStore opens the durable store ($RUNWAY_STATE) once. Without RUNWAY_STATE it returns
// state.Open's error; optionalStore tells that case apart.
func (e *cmdEnv) openStore(ctx context.Context) (state.Store, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.storeOpened {
		e.storeOpened = true
		url := e.getenv(state.EnvVar)
		e.store, e.storeErr = state.Open(ctx, url, e.gcpConfig(""))
	}
	return e.store, e.storeErr
}

// optionalStore is openStore for commands that work without a store: nil, nil when
// RUNWAY_STATE is not set; a configured store that can't be opened is still an error.
func (e *cmdEnv) optionalStore(ctx context.Context) (state.Store, error) {
	if e.getenv(state.EnvVar) == "" {
		return nil, nil
	}
	return e.openStore(ctx)
}

// Close closes the clients and the store that were opened.
func (e *cmdEnv) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(e.clients)) {
		errs = append(errs, e.clients[p].Close())
	}
	e.clients = map[string]*allclients.Clients{}
	if c, ok := e.store.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	e.store, e.storeOpened = nil, false
	return errors.Join(errs...)
}

// formatFlag is a --format value restricted to a list, checked when the flag is parsed.
type formatFlag struct {
	value   string
	allowed []string
}

func (f *formatFlag) String() string { return f.value }
func (f *formatFlag) Type() string   { return "string" }
func (f *formatFlag) Set(v string) error {
	if !slices.Contains(f.allowed, v) {
		return fmt.Errorf("must be %s", strings.Join(f.allowed, " or "))
	}
	f.value = v
	return nil
}

// addFormatFlag registers --format on cmd with the allowed values, the first the default.
func addFormatFlag(cmd *cobra.Command, usage string, allowed ...string) *formatFlag {
	f := &formatFlag{value: allowed[0], allowed: allowed}
	cmd.Flags().Var(f, "format", usage)
	return f
}
