module runwayjobs.dev/runwayctl

go 1.26.0

require (
	github.com/spf13/cobra v1.10.2
	runwayjobs.dev/shared v0.0.0
)

require (
	github.com/goccy/go-yaml v1.19.2 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/robfig/cron/v3 v3.0.1 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	golang.org/x/text v0.43.0 // indirect
)

replace runwayjobs.dev/shared => ../shared
