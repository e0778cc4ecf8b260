// Package monitor is the Runway Jobs monitor function: it watches the Cloud Run job metrics against each job's schedule and alerts owners.
//
// Eventarc delivers Pub/Sub messages to it as CloudEvents through functions-framework-go; the
// Cloud Functions Go buildpack builds this folder on its own, so the package sits at the module
// root and is not package main (the local main is under cmd/monitor).
package monitor

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"

	"runwayjobs.dev/shared/logging"
)

// FunctionName is the target the function is registered as (FUNCTION_TARGET).
const FunctionName = "Monitor"

// ErrNotHandled is returned for every event until the function's work lands.
var ErrNotHandled = errors.New("monitor: events are not handled yet")

var log = logging.New(os.Stdout, "monitor", zerolog.InfoLevel)

func init() {
	functions.CloudEvent(FunctionName, Monitor)
}

// Monitor handles one CloudEvent. It does not handle events yet; the error makes Eventarc keep the
// message for redelivery rather than dropping it.
func Monitor(ctx context.Context, e event.Event) error {
	log.Warn().Str("event_id", e.ID()).Str("event_type", e.Type()).Str("event_source", e.Source()).Msg("event not handled yet")
	return fmt.Errorf("event %s of type %s: %w", e.ID(), e.Type(), ErrNotHandled)
}
