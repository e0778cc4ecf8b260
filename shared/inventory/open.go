package inventory

import (
	"context"
	"fmt"
	"io"
	"strings"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/gcp"
)

// Open reads and validates the inventory at location, a local path or gs://bucket/object,
// the form RUNWAY_INVENTORY and runwayctl's --inventory take. An object is read with the
// official Cloud Storage JSON API client (gcp.NewStorageAPI) in the world of cfg (Google Cloud, or the emulator's Cloud
// Storage when cfg.EmulatorHost is set), and refused unread above document.MaxSize (1 MiB),
// as a local file is.
func Open(ctx context.Context, location string, cfg gcp.Config) (*Inventory, error) {
	if !strings.HasPrefix(location, "gs://") {
		return Load(location)
	}
	bucket, object, err := splitGCS(location)
	if err != nil {
		return nil, err
	}
	client, err := gcp.NewStorageAPI(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("inventory.Open %s: %w", location, err)
	}
	resp, err := gcp.DownloadObject(ctx, client, bucket, object)
	if err != nil {
		return nil, fmt.Errorf("inventory.Open %s: %w", location, err)
	}
	defer resp.Body.Close()
	if size := resp.ContentLength; size > document.MaxSize {
		return nil, fmt.Errorf("inventory.Open %s: object is %d bytes; the limit is %d (1 MiB)", location, size, document.MaxSize)
	}
	// The object's size may change between the attributes and the body: bound the body too.
	data, err := io.ReadAll(io.LimitReader(resp.Body, document.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("inventory.Open %s: %w", location, err)
	}
	if len(data) > document.MaxSize {
		return nil, fmt.Errorf("inventory.Open %s: object is over %d bytes (1 MiB)", location, document.MaxSize)
	}
	return Parse(location, data)
}

// splitGCS splits gs://bucket/object.
func splitGCS(location string) (bucket, object string, err error) {
	rest, ok := strings.CutPrefix(location, "gs://")
	bucket, object, _ = strings.Cut(rest, "/")
	if !ok || bucket == "" || object == "" || strings.HasSuffix(object, "/") {
		return "", "", fmt.Errorf("inventory.Open %s: want gs://bucket/object", location)
	}
	return bucket, object, nil
}
