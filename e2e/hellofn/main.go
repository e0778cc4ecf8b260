// Command hellofn is the baseline of the cold-start benchmark: a hello-world CloudEvent
// function on the same functions framework as Runway's, doing nothing but answering.
package main

import (
	"context"
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"
)

func init() {
	functions.CloudEvent("Hello", func(context.Context, event.Event) error { return nil })
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.StartHostPort("127.0.0.1", port); err != nil {
		log.Fatalf("funcframework.Start: %v", err)
	}
}
