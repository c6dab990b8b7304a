# aigw — two commands on a fresh machine:
#   make run    gateway on the shipped quickstart policy (mock provider, no keys, no network)
#   make test   everything CI runs
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
POLICY    ?= configs/examples/quickstart.yaml

.PHONY: build run test test-short vet fmt bench fuzz validate docker

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/aigw ./cmd/aigw

run: build
	./bin/aigw serve -c $(POLICY)

# The test command CI runs (.ci/run calls it): formatting, vet, and every
# test with the race detector.
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -count=1 ./...

validate: build
	./bin/aigw validate configs/examples/quickstart.yaml
	./bin/aigw validate configs/examples/openai.yaml
	./bin/aigw validate configs/examples/tiers.yaml

# Benchmarks are not part of `make test`: they take minutes and want a quiet
# machine. See docs/benchmarks.md.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./providers/sse/ ./providers/openai/ ./proxy/
	$(GO) test -run '^$$' -bench . -benchmem ./policy/quota/ ./policy/route/
	$(GO) run ./bench -gateway ./bin/aigw

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzScanner -fuzztime 60s ./providers/sse/
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 60s ./configs/

docker:
	docker build -t aigw:$(VERSION) .
