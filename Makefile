# Runway Jobs: `make dev` (the main job), `make test` (every check CI runs), `make bench`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

MODULES   := shared functions/deploy functions/trigger functions/monitor runwayctl e2e infra
FUNCTIONS := deploy trigger monitor
GO        ?= go
FUZZTIME  ?= 30s

.PHONY: dev build test fmt vet gotest functions bench fuzz docs runwayctl

## dev: the whole platform on the embedded emulator (runwayctl dev): validate the examples, build
## runwayctl and the three functions into bin/, start everything and deploy the examples.
dev: build
	./bin/runwayctl validate --inventory examples/inventory.yml examples/...
	./bin/runwayctl dev $(DEVFLAGS)

## build: runwayctl and the function binaries into bin/.
build: runwayctl
	@for f in $(FUNCTIONS); do (cd functions/$$f && $(GO) build -o ../../bin/$$f ./cmd/$$f); done

## runwayctl: build the CLI into bin/.
runwayctl:
	@mkdir -p bin
	cd runwayctl && $(GO) build -o ../bin/runwayctl .

## test: gofmt, go vet and go test -race over every module, then each function on its own.
test: fmt vet gotest functions

fmt:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	@for m in $(MODULES); do echo "go vet $$m"; (cd $$m && $(GO) vet ./...); done

gotest:
	@for m in $(MODULES); do echo "go test -race $$m"; (cd $$m && $(GO) test -race -count=1 ./...); done

## functions: each function folder vendored and copied alone, then tested (GOWORK=off) and built there.
functions:
	@for f in $(FUNCTIONS); do scripts/check-function functions/$$f; done

## bench: every benchmark, 6 runs each, for benchstat.
bench:
	@for m in $(MODULES); do (cd $$m && $(GO) test -run='^$$' -bench=. -benchmem -count=6 ./...); done

## fuzz: run each fuzz target for FUZZTIME.
fuzz:
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./schedule/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./manifest/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./inventory/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzSplitGCS$$' -fuzztime=$(FUZZTIME) ./inventory/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzDecodeRunRequest$$' -fuzztime=$(FUZZTIME) ./platform/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./document/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzParseConfig$$' -fuzztime=$(FUZZTIME) ./notify/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzParseMultipart$$' -fuzztime=$(FUZZTIME) ./emulator/storage/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzRegionOf$$' -fuzztime=$(FUZZTIME) ./desired/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzPageToken$$' -fuzztime=$(FUZZTIME) ./emulator/storage/

## docs: regenerate docs/manifest.md and docs/runway-job.schema.json from the schema.
docs:
	cd runwayctl && $(GO) run . schema --format markdown > ../docs/manifest.md
	cd runwayctl && $(GO) run . schema > ../docs/runway-job.schema.json
