# Runway Jobs: `make dev` (the main job), `make test` (every check CI runs), `make bench`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

MODULES   := shared functions/deploy functions/trigger functions/monitor runwayctl e2e infra release
FUNCTIONS := deploy trigger monitor
GO        ?= go
FUZZTIME  ?= 30s
PACKAGES  := $(foreach m,$(MODULES),./$(m)/...)
# release's tests run after the image is built (make releasetest); e2e's and infra's build a
# static runwayctl and the functions, so in make test they start once image-host has compiled
# those (gotest-static), the others at once (gotest-core).
STATICTESTS := ./e2e/... ./infra/...
CORETESTS   := $(foreach m,$(filter-out release e2e infra,$(MODULES)),./$(m)/...)

# One compilation per package and configuration. -trimpath drops each package's directory
# from its build-cache key, so the functions' vendored copies (scripts/check-function) reuse
# what the workspace compiled, and make vet runs with -race so that it reuses go test's build.
# (docs/benchmarks.md, "make test".)
export GOFLAGS := -trimpath -buildvcs=false

.PHONY: dev build test fmt vet gotest gotest-core gotest-static releasetest functions bench fuzz docs runwayctl image image-host

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
# CGO_ENABLED=0: the tool compiles with the static runwayctl it builds (most of its packages are
# runwayctl's too); TestImage's rebuild runs it the same way.
IMAGE := cd release && CGO_ENABLED=0 $(GO) run ./cmd/image -repo ..
image: $(if $(ORDERED),image-host)
	@mkdir -p bin
	$(IMAGE) -o ../bin/runwayctl.oci.tar

## test: every check CI runs: gofmt, then one graph of steps run four at a time (make -j4),
## listed in the order make prefers them when several are ready:
##   gotest-core    go test -race -vet=all of shared, the functions and runwayctl: one go
##                  command compiles, vets and tests, each test as soon as its package is built
##   image-host     the image for this machine's platform only: compiles the static runwayctl
##                  the e2e and infra tests build, beside gotest-core's race build
##   image          the whole image (after image-host): arm64 compiles while the tests wait
##                  on the processes they start; it is the longest chain, so it goes first
##   gotest-static  the e2e and infra tests (after image-host)
##   functions      each function vendored and built alone, as Cloud Functions builds it
##                  (after image-host, whose static compile its build shares)
##   releasetest    the image's tests, on bin/runwayctl.oci.tar (after image)
## ORDERED=1 gives the steps these prerequisites (alone, each runs without them).
## docs/benchmarks.md ("make test") has the timings behind this order.
test: fmt
	@$(MAKE) --no-print-directory -j4 ORDERED=1 gotest-core image-host image gotest-static functions releasetest

fmt:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## vet: go vet of every package (make test runs the same analyzers through go test -vet=all).
vet:
	$(GO) vet -race $(PACKAGES)

HOSTPLATFORM = $(if $(filter arm64,$(shell $(GO) env GOARCH)),linux/arm64/v8,linux/amd64)
image-host:
	@mkdir -p bin
	$(IMAGE) -platform $(HOSTPLATFORM) -o ../bin/runwayctl-host.oci.tar

# -vet=all: go vet's whole set of analyzers on every package tested (go vet's own check,
# not go test's default subset). -p 4: several test binaries mostly wait on the processes they
# start (the e2e platform, gitlab-ci-local, Chromium, the emulator's jobs); with -p 2 two of
# them would hold both of go's build slots while the cores idle. -ldflags=-w: no DWARF in the
# test binaries, which links each of them in a third of the time (stack traces keep their
# files and lines).
GOTEST := $(GO) test -race -count=1 -vet=all -p 4 -ldflags=-w
## gotest: go test -race -vet=all of every module but release.
gotest: gotest-core gotest-static
gotest-core:
	$(GOTEST) $(CORETESTS)
gotest-static: $(if $(ORDERED),image-host)
	$(GOTEST) $(STATICTESTS)

# The release module's tests check bin/runwayctl.oci.tar (TestImage).
releasetest: image
	RUNWAY_IMAGE_TAR=$(CURDIR)/bin/runwayctl.oci.tar $(GOTEST) ./release/...

## functions: each function folder vendored and copied alone, then built there (GOWORK=off),
## after checking that the workspace, where gotest ran its tests, selects the same module
## versions; the three concurrently, each one's output printed whole when it ends.
functions: $(if $(ORDERED),image-host)
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
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzRunRecordKey$$' -fuzztime=$(FUZZTIME) ./platform/
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzValidatorMatchesOracle$$' -fuzztime=$(FUZZTIME) ./document/
	cd runwayctl && $(GO) test -run='^$$' -fuzz='^FuzzDeniedPermission$$' -fuzztime=$(FUZZTIME) .
	cd shared && $(GO) test -run='^$$' -fuzz='^FuzzRunWindowsAdd$$' -fuzztime=$(FUZZTIME) ./platform/

## docs: regenerate docs/manifest.md and docs/runway-job.schema.json from the schema.
docs:
	cd runwayctl && $(GO) run . schema --format markdown > ../docs/manifest.md
	cd runwayctl && $(GO) run . schema > ../docs/runway-job.schema.json
