# ranged — the whole project through make. See README.md.
CARGO  ?= cargo
DIR    ?= www
LISTEN ?= 0.0.0.0:8080
MUSL   := x86_64-unknown-linux-musl
STATIC := target/$(MUSL)/release/ranged
FUZZ_SECONDS ?= 60

.PHONY: build run test tools lint static cross bench fuzz check clean

build:
	$(CARGO) build --release

## Serve DIR (default: ./www, made if missing — not this checkout, whose
## target/ holds gigabytes of build output) on LISTEN (default 0.0.0.0:8080).
run: build
	mkdir -p $(DIR)
	./target/release/ranged --listen $(LISTEN) $(ARGS) $(DIR)

## Unit tests, loopback integration tests and real-client tests (resumed
## downloads and uploads, a browser). Installs the pinned test clients first.
test: tools
	$(CARGO) test --all-targets
	$(CARGO) test --doc

## The pinned third-party clients the tests drive (tus-js-client,
## playwright-core, tuspy), into tests/node_modules and .tools/python;
## again only when their pins change.
tools: tests/node_modules/.installed .tools/python/.installed

tests/node_modules/.installed: tests/package.json tests/package-lock.json
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	touch $@

.tools/python/.installed: tests/requirements.txt
	python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --target .tools/python -r tests/requirements.txt
	touch $@

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# The shipped binary rebuilds std for size: without std's backtrace
# symbolizer (gimli, addr2line, miniz: ~240 KB with std's own -O3 code),
# compiled at our opt-level with LTO across it, no panic file:line strings,
# and the compact software SHA-2 (only used on CPUs without SHA
# instructions). `-Z build-std` is a Cargo feature the stable toolchain
# gates behind RUSTC_BOOTSTRAP=1; it needs the rust-src component.
SMALL_STD := -Z build-std=std,panic_unwind -Z build-std-features=panic-unwind,optimize_for_size
SMALL_FLAGS := -Zlocation-detail=none --cfg sha2_backend_soft="compact"
SIZE_LIMIT := 716800

## A fully static, stripped musl binary, checked and measured (at most 700 KiB).
static:
	rustup target list --installed | grep -qx $(MUSL) || rustup target add $(MUSL)
	rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
	RUSTC_BOOTSTRAP=1 RUSTFLAGS='$(SMALL_FLAGS)' $(CARGO) build --release --target $(MUSL) $(SMALL_STD)
	@file $(STATIC)
	@file $(STATIC) | grep -q 'static' || { echo "not statically linked"; exit 1; }
	@! ldd $(STATIC) 2>/dev/null | grep -q '=>' || { echo "ldd found shared libraries"; exit 1; }
	@echo "size: $$(stat -c %s $(STATIC)) bytes (limit $(SIZE_LIMIT))"
	@test $$(stat -c %s $(STATIC)) -le $(SIZE_LIMIT) || { echo "the binary is over 700 KiB"; exit 1; }

## Static ARM binaries for every ARM musl target installed (rustup target add ...),
## linked by the rust-lld that ships with the toolchain: no cross gcc needed.
ARM_TARGETS := aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf
cross:
	@for t in $(ARM_TARGETS); do \
	  if rustup target list --installed | grep -qx $$t; then \
	    env CARGO_TARGET_$$(echo $$t | tr a-z- A-Z_)_LINKER=rust-lld RUSTC_BOOTSTRAP=1 RUSTFLAGS='$(SMALL_FLAGS)' \
	      $(CARGO) build --release --target $$t $(SMALL_STD) || exit 1; \
	    file target/$$t/release/ranged; \
	  else echo "skip $$t: rustup target add $$t"; fi; \
	done

## ranged against nginx, lighttpd and @tus/server on loopback (see bench/run).
bench: tests/node_modules/.installed
	bench/run

## Bounded fuzzing of the request-head, Range, path and chunked-body parsers (FUZZ_SECONDS each).
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --release --test fuzz -- --ignored --nocapture --test-threads=4

check: lint test static

clean:
	$(CARGO) clean
