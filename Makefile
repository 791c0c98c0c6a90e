# strata — see README.md. Every target works on a fresh machine with Go 1.26.
export GOTOOLCHAIN := local
GO        ?= go
BIN       := bin/strata
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/strata-gitops/strata/internal/cli.version=$(VERSION) \
             -X github.com/strata-gitops/strata/internal/cli.commit=$(COMMIT)
STRATA_BIN ?= $(HOME)/.cache/strata/bin
export STRATA_BIN

.PHONY: all build test vet fmt-check unit race fuzz-short demo tools tools-envtest bench image clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/strata

## test: go vet, gofmt check, go test ./..., race, a short fuzz run (the README's test command)
test: vet fmt-check unit race fuzz-short

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './hack/tools/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

unit: tools
	KUBEBUILDER_ASSETS=$(STRATA_BIN) $(GO) test -count=1 -timeout 30m ./...

## race: the reconciler's and the approval gate's tests under the race detector
race: tools
	KUBEBUILDER_ASSETS=$(STRATA_BIN) $(GO) test -race -count=1 -timeout 20m ./reconciler/ ./internal/approval/ ./internal/source/

## fuzz-short: each fuzz target (package:Target:budget), one per go test -fuzz
## (seeds: webhook/testdata/admission, webhook/testdata/fuzz and the inventory's shard seeds).
## Budgets are executions (about 10 s each on two cores), not durations: with a
## duration, go1.26's fuzz coordinator can fail a target with a bare "context
## deadline exceeded" when the time runs out mid-execution (golang/go#75804,
## fixed in Go 1.27), which once turned CI red with nothing found. FUZZTIME
## overrides every budget (e.g. FUZZTIME=2m for a longer run).
FUZZTIME ?=
FUZZ_TARGETS := webhook:FuzzDecodeAdmissionReview:10000x webhook:FuzzDecide:2000x internal/inventory:FuzzDecodeShard:20000x
fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		p=$${t%%:*}; r=$${t#*:}; f=$${r%%:*}; n=$${r#*:}; n=$${FUZZTIME:-$$n}; \
		echo "fuzz: $$p $$f for $$n"; \
		$(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$$n -fuzzminimizetime=100x ./$$p/ || exit 1; \
	done

## tools: build the control-plane binaries and kwok into $(STRATA_BIN) (cached)
tools:
	hack/install-tools.sh all

tools-envtest:
	hack/install-tools.sh envtest

## demo: build strata and render the demo's prod environment with its placement table
demo: build
	@hack/demo.sh

bench: build
	$(GO) run ./bench/render -reps 7 -markdown bench/RESULTS.md

## image: strata's container image without a container engine (hack/image):
## pushed to $(IMAGE_REPO):$(IMAGE_TAG), or an OCI layout in bin/image when
## IMAGE_REPO is empty. The same commit gives the same digest.
IMAGE_REPO ?=
IMAGE_TAG  ?= $(patsubst v%,%,$(VERSION))
IMAGE_ARCH ?= amd64
image:
	$(GO) run ./hack/image -repo '$(IMAGE_REPO)' -tag '$(IMAGE_TAG)' -arch '$(IMAGE_ARCH)' \
		-version '$(VERSION)' -commit '$(COMMIT)' -out bin/image

clean:
	rm -rf bin
