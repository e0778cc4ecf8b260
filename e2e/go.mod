module runwayjobs.dev/e2e

go 1.26.0

require runwayjobs.dev/shared v0.0.0

require (
	github.com/goccy/go-yaml v1.19.2 // indirect
	github.com/robfig/cron/v3 v3.0.1 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3 // indirect
	golang.org/x/text v0.43.0 // indirect
)

replace runwayjobs.dev/shared => ../shared
