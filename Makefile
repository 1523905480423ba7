# ranged — the whole project through make. See README.md.
CARGO  ?= cargo
DIR    ?= .
LISTEN ?= 0.0.0.0:8080
MUSL   := x86_64-unknown-linux-musl
STATIC := target/$(MUSL)/release/ranged
FUZZ_SECONDS ?= 60

.PHONY: build run test lint static cross bench fuzz check clean

build:
	$(CARGO) build --release

## Serve DIR (default: this folder) on LISTEN (default 0.0.0.0:8080).
run: build
	./target/release/ranged --listen $(LISTEN) $(ARGS) $(DIR)

## Unit tests, loopback integration tests and real-client resume tests.
test:
	$(CARGO) test --all-targets
	$(CARGO) test --doc

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

## A fully static, stripped musl binary, checked and measured.
static:
	rustup target list --installed | grep -qx $(MUSL) || rustup target add $(MUSL)
	$(CARGO) build --release --target $(MUSL)
	@file $(STATIC)
	@file $(STATIC) | grep -q 'static' || { echo "not statically linked"; exit 1; }
	@! ldd $(STATIC) 2>/dev/null | grep -q '=>' || { echo "ldd found shared libraries"; exit 1; }
	@echo "size: $$(stat -c %s $(STATIC)) bytes"

## Static ARM binaries for every ARM musl target installed (rustup target add ...),
## linked by the rust-lld that ships with the toolchain: no cross gcc needed.
ARM_TARGETS := aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf
cross:
	@for t in $(ARM_TARGETS); do \
	  if rustup target list --installed | grep -qx $$t; then \
	    env CARGO_TARGET_$$(echo $$t | tr a-z- A-Z_)_LINKER=rust-lld $(CARGO) build --release --target $$t || exit 1; \
	    file target/$$t/release/ranged; \
	  else echo "skip $$t: rustup target add $$t"; fi; \
	done

bench:
	bench/run

## Bounded fuzzing of the request-head and Range parsers (FUZZ_SECONDS each).
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --release --test fuzz -- --ignored --nocapture --test-threads=3

check: lint test static

clean:
	$(CARGO) clean
