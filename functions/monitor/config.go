package monitor

import (
	"fmt"
	"strconv"
	"time"

	"runwayjobs.dev/shared/detect"
	"runwayjobs.dev/shared/platform"
)

// Environment of the monitor function (besides RUNWAY_EMULATOR_HOST, RUNWAY_STATE and
// RUNWAY_INVENTORY).
const (
	// EnvChannels is the path of the channel configuration (notify.Config, YAML or JSON).
	EnvChannels = "RUNWAY_CHANNELS"
	// EnvIngestLag is how far behind now the metrics are evaluated (Go duration, default 3m).
	EnvIngestLag = "RUNWAY_MONITOR_INGEST_LAG"
	// EnvReAlert repeats open incidents' alerts this often (Go duration, default 0: never).
	EnvReAlert = "RUNWAY_MONITOR_REALERT"
	// EnvBlindAfter is how long the metrics may stay unreadable before the platform channels
	// are told (Go duration, default 15m).
	EnvBlindAfter = "RUNWAY_MONITOR_BLIND_AFTER"
	// EnvWorkers bounds the concurrent execution reads (default 8).
	EnvWorkers = "RUNWAY_MONITOR_WORKERS"
	// EnvFlapWindow and EnvFlapChanges are the flap damping (detect.Config): a success does
	// not resolve an incident when that would make EnvFlapChanges (default 4) incident opens
	// and resolves within EnvFlapWindow (Go duration, default 6h; 0 turns damping off).
	EnvFlapWindow  = "RUNWAY_MONITOR_FLAP_WINDOW"
	EnvFlapChanges = "RUNWAY_MONITOR_FLAP_CHANGES"
)

// Config is the monitor's configuration: what every function reads, and the monitor's own.
type Config struct {
	platform.FunctionConfig
	// ChannelsPath is the channel configuration (RUNWAY_CHANNELS); empty means none.
	ChannelsPath string
	// Lookup reads secrets referenced as {env: NAME} by the channel configuration.
	Lookup func(string) (string, bool)

	IngestLag  time.Duration
	ReAlert    time.Duration
	BlindAfter time.Duration
	Workers    int
	// FlapWindow and FlapChanges are detect.Config's flap damping (FlapWindow negative: off).
	FlapWindow  time.Duration
	FlapChanges int
	// MaxWindow bounds how far back one tick evaluates (default 24h): after a longer outage
	// the monitor skips ahead rather than replay days of slots.
	MaxWindow time.Duration
	// Lease is how long a tick owns the delivery of the alerts it claimed (default 5m): longer
	// than one delivery with its retries can take.
	Lease time.Duration
	// MaxDeliveryAge drops an alert no channel would take this long after the tick that
	// detected it (default 24h).
	MaxDeliveryAge time.Duration
	// CallTimeout bounds each Cloud Monitoring query, retries included (default 30s): the
	// client retries Unavailable until its context ends.
	CallTimeout time.Duration
	// TickTimeout bounds a whole tick (default 4m, less than Lease).
	TickTimeout time.Duration
	// RecordRetention is how long run records and deploy outcomes are kept (default
	// platform.RecordRetention; see retention.go).
	RecordRetention time.Duration
	// PruneBatch bounds the keys one tick looks at for expiry (default 500); PruneReads the
	// records among them it reads for their time (default 50).
	PruneBatch, PruneReads int
	// PruneInterval is the least time from the start of one pruning pass to the start of the
	// next (default 24h): between passes a tick does not list the store.
	PruneInterval time.Duration
}

// ConfigFromEnv reads the Config through lookup (os.LookupEnv in production; tests pass a
// map's lookup).
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	// A missing common setting is reported after every other setting is read, so that a
	// recording lookup (infra's drift test) learns them all.
	fc, fcErr := platform.FunctionConfigFromEnv("monitor", lookup)
	get := func(k string) string { v, _ := lookup(k); return v }
	c := Config{
		FunctionConfig: fc,
		ChannelsPath:   get(EnvChannels),
		Lookup:         lookup,
		IngestLag:      3 * time.Minute,
		BlindAfter:     15 * time.Minute,
		Workers:        8,
		FlapWindow:     detect.DefaultFlapWindow,
		FlapChanges:    detect.DefaultFlapChanges,
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{EnvIngestLag, &c.IngestLag}, {EnvReAlert, &c.ReAlert}, {EnvBlindAfter, &c.BlindAfter}} {
		if v := get(d.env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x < 0 {
				return Config{}, fmt.Errorf("%s=%q: want a Go duration such as 3m", d.env, v)
			}
			*d.to = x
		}
	}
	if v := get(EnvFlapWindow); v != "" {
		x, err := time.ParseDuration(v)
		if err != nil || x < 0 {
			return Config{}, fmt.Errorf("%s=%q: want a Go duration such as 6h, or 0 for no flap damping", EnvFlapWindow, v)
		}
		c.FlapWindow = x
		if x == 0 {
			c.FlapWindow = -1
		}
	}
	if v := get(EnvFlapChanges); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > 100 {
			return Config{}, fmt.Errorf("%s=%q: want a number from 2 to 100", EnvFlapChanges, v)
		}
		c.FlapChanges = n
	}
	if v := get(EnvWorkers); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			return Config{}, fmt.Errorf("%s=%q: want a number from 1 to 256", EnvWorkers, v)
		}
		c.Workers = n
	}
	if fcErr != nil {
		return Config{}, fcErr
	}
	return c.withDefaults(), nil
}

func (c Config) withDefaults() Config {
	if c.Workers < 1 {
		c.Workers = 8
	}
	if c.MaxWindow <= 0 {
		c.MaxWindow = 24 * time.Hour
	}
	if c.Lease <= 0 {
		c.Lease = 5 * time.Minute
	}
	if c.MaxDeliveryAge <= 0 {
		c.MaxDeliveryAge = 24 * time.Hour
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.TickTimeout <= 0 {
		c.TickTimeout = 4 * time.Minute
	}
	c.RecordRetention = retentionOf(c.RecordRetention)
	if c.PruneBatch <= 0 {
		c.PruneBatch = defaultPruneBatch
	}
	if c.PruneReads <= 0 {
		c.PruneReads = defaultPruneReads
	}
	if c.PruneInterval <= 0 {
		c.PruneInterval = defaultPruneInterval
	}
	if c.Lookup == nil {
		c.Lookup = func(string) (string, bool) { return "", false }
	}
	return c
}
