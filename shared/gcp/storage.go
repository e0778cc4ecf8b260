package gcp

import (
	"context"
	"fmt"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
)

// StorageOptions returns the Cloud Storage client options for the configured world. Reads go
// through the JSON API in both worlds (the emulator serves no XML API), so production and
// the emulator run the same requests; with the emulator the client calls
// http://host:port/storage/v1/… (uploads: /upload/storage/v1/…) without authentication.
func (c Config) StorageOptions() []option.ClientOption {
	opts := []option.ClientOption{storage.WithJSONReads()}
	if c.EmulatorHost == "" {
		return opts // Application Default Credentials, default endpoint
	}
	return append(opts,
		option.WithEndpoint("http://"+c.EmulatorHost+"/storage/v1/"),
		option.WithoutAuthentication(),
		option.WithTelemetryDisabled(),
		storage.WithDisabledClientMetrics(),
	)
}

// NewStorage builds the Cloud Storage client (HTTP/JSON) for c. It makes no network call:
// connections open on the first request. The caller closes the client.
func NewStorage(ctx context.Context, c Config) (*storage.Client, error) {
	cl, err := storage.NewClient(ctx, c.StorageOptions()...)
	if err != nil {
		return nil, fmt.Errorf("gcp.NewStorage: storage.NewClient: %w", err)
	}
	return cl, nil
}
