# Runway Jobs: `make dev` (the main job), `make test` (every check CI runs), `make bench`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

MODULES   := shared functions/deploy functions/trigger functions/monitor runwayctl e2e infra release
FUNCTIONS := deploy trigger monitor
GO        ?= go
FUZZTIME  ?= 30s
PACKAGES  := $(foreach m,$(MODULES),./$(m)/...)
# The functions' tests run once, from their vendored copies (make functions), not here too.
TESTPACKAGES := $(foreach m,$(filter-out functions/%,$(MODULES)),./$(m)/...)

# One compilation per package and configuration. -trimpath drops each package's directory
# from its build-cache key, so the functions' vendored copies (scripts/check-function) reuse
# what the workspace compiled; vet runs with -race so that it reuses the race build of go test.
# (docs/benchmarks.md, "make test".)
export GOFLAGS := -trimpath -buildvcs=false

.PHONY: dev build test fmt vet gotest functions bench fuzz docs runwayctl image

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

## image: the runwayctl image (linux/amd64 and linux/arm64, no Docker daemon, no base image) as
## an OCI image layout tarball; version, commit and time from git (docs/operations.md).
image:
	@mkdir -p bin
	cd release && $(GO) run ./cmd/image -repo .. -o ../bin/runwayctl.oci.tar

## test: gofmt, then go vet beside the image, then go test -race over every module
## (release/image checks bin/runwayctl.oci.tar) beside each function tested on its own.
## Each pair runs concurrently: one fills the cores while the other links or waits.
test: fmt
	@$(MAKE) --no-print-directory -j2 vet image
	@$(MAKE) --no-print-directory -j2 gotest functions

fmt:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# vet and test run over every module at once, from the workspace: compiling one module
# overlaps the tests of another, and a package shared by several modules compiles once.
vet:
	$(GO) vet -race $(PACKAGES)

# -ldflags=-w: no DWARF in the test binaries, which links each of them in a third of the time
# (stack traces keep their files and lines).
gotest:
	RUNWAY_IMAGE_TAR=$(CURDIR)/bin/runwayctl.oci.tar $(GO) test -race -count=1 -ldflags=-w $(TESTPACKAGES)

## functions: each function folder vendored and copied alone, then tested (GOWORK=off, -race)
## and built there; the three concurrently, each one's output printed whole when it ends.
functions:
	@mkdir -p bin; pids=(); for f in $(FUNCTIONS); do scripts/check-function functions/$$f > bin/check-$$f.log 2>&1 & pids+=($$!); done; \
	rc=0; i=0; for f in $(FUNCTIONS); do wait $${pids[$$i]} || { rc=1; echo "FAIL functions/$$f"; }; cat bin/check-$$f.log; i=$$((i+1)); done; exit $$rc

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
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzScan$$' -fuzztime=$(FUZZTIME) ./document/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzScanJSON$$' -fuzztime=$(FUZZTIME) ./document/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzParseConfig$$' -fuzztime=$(FUZZTIME) ./notify/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzParseMultipart$$' -fuzztime=$(FUZZTIME) ./emulator/storage/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzRegionOf$$' -fuzztime=$(FUZZTIME) ./desired/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzPageToken$$' -fuzztime=$(FUZZTIME) ./emulator/storage/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzDenyRule$$' -fuzztime=$(FUZZTIME) ./emulator/iam/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzLabel$$' -fuzztime=$(FUZZTIME) ./gcp/runcontract/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzLabels$$' -fuzztime=$(FUZZTIME) ./desired/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzAppEngineCron$$' -fuzztime=$(FUZZTIME) ./emulator/scheduler/
	cd runwayctl && $(GO) test -run='^$$' -fuzz='^FuzzIdentityOf$$' -fuzztime=$(FUZZTIME) .
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzTemplate$$' -fuzztime=$(FUZZTIME) ./emulator/rest/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzQuery$$' -fuzztime=$(FUZZTIME) ./emulator/rest/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzSchedulerJobLinks$$' -fuzztime=$(FUZZTIME) ./gcp/
	cd release && $(GO) test -run='^$$' -fuzz='^FuzzUnpackBusybox$$' -fuzztime=$(FUZZTIME) ./image/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzScrub$$' -fuzztime=$(FUZZTIME) ./notify/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzLevelless$$' -fuzztime=$(FUZZTIME) ./logging/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzSlotOfKey$$' -fuzztime=$(FUZZTIME) ./platform/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzValidatorMatchesOracle$$' -fuzztime=$(FUZZTIME) ./document/
	cd runwayctl && $(GO) test -run='^$$' -fuzz='^FuzzDeniedPermission$$' -fuzztime=$(FUZZTIME) .
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzRunWindowsAdd$$' -fuzztime=$(FUZZTIME) ./platform/

## docs: regenerate docs/manifest.md and docs/runway-job.schema.json from the schema.
docs:
	cd runwayctl && $(GO) run . schema --format markdown > ../docs/manifest.md
	cd runwayctl && $(GO) run . schema > ../docs/runway-job.schema.json
