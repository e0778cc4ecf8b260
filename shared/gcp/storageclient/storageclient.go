// Package storageclient builds the Cloud Storage client of cloud.google.com/go/storage for
// runwayctl and the tests. It is a package of its own because that client links gRPC's xDS,
// OpenTelemetry's SDK and Cloud Monitoring's exporter: the functions, which must start fast,
// use gcp.NewStorageAPI (the generated JSON API client) instead.
package storageclient

import (
	"context"
	"fmt"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"runwayjobs.dev/shared/gcp"
)

// New builds the Cloud Storage client (HTTP/JSON) for c: reads go through the JSON API in
// both worlds (the emulator serves no XML API). It makes no network call: connections open on
// the first request. The caller closes the client.
func New(ctx context.Context, c gcp.Config) (*storage.Client, error) {
	cl, err := storage.NewClient(ctx, Options(c)...)
	if err != nil {
		return nil, fmt.Errorf("storageclient.New: storage.NewClient: %w", err)
	}
	return cl, nil
}

// Options returns gcp's Cloud Storage options for c and this client's own: JSON reads, and
// with the emulator no client metrics.
func Options(c gcp.Config) []option.ClientOption {
	opts := append(c.StorageOptions(), storage.WithJSONReads())
	if c.EmulatorHost != "" {
		opts = append(opts, storage.WithDisabledClientMetrics())
	}
	return opts
}
