GO ?= go
CONFIG ?= config.example.toml

.PHONY: build run test vet fuzz bench check clean

build:
	$(GO) build -o bin/postkasse ./cmd/postkasse
	$(GO) build -o bin/mailbench ./cmd/mailbench

run: build
	./bin/postkasse serve -config $(CONFIG)

check: build
	./bin/postkasse check -config $(CONFIG)

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet:
	gofmt -l . | (! grep .)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

test: vet
	$(GO) test -race -timeout 9m ./...

# Short fuzzing pass over every fuzz target; FUZZTIME=1m make fuzz for longer.
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./store/ ./imap/
	bench/run.sh

clean:
	rm -rf bin data
