# The README's commands: `make demo` runs an example handler, `make test` runs every check.

CARGO ?= cargo
BIN := target/release/bootstrap
# Layer binaries are static (musl), so they run on provided.al2023 and provided.al2 alike.
X86_64_TARGET := x86_64-unknown-linux-musl
ARM64_TARGET := aarch64-unknown-linux-musl
X86_64_BIN := target/$(X86_64_TARGET)/release/bootstrap
ARM64_BIN := target/$(ARM64_TARGET)/release/bootstrap
# Lambda's limit is 250 MB for everything; ours for the binary is 3 MB.
MAX_BINARY_BYTES := 3000000
EXAMPLES := perl python shell
QEMU_ARM64 ?= qemu-aarch64-static

# `make install`: bootstrap on PATH as $(PREFIX)/bin/bootstrap, a link to
# $(PREFIX)/lib/bootstrap/bootstrap, which has interpreters.toml and the runners beside it,
# laid out as the layer is (bootstrap finds them beside its real path).
PREFIX ?= $(HOME)/.local
INSTALL_BIN ?= $(BIN)
# boto3 and the AWS CLI for the `serve` tests, pinned in tests/requirements.txt.
TEST_VENV := tests/.venv

.PHONY: build test lint demo layer binaries test-arm64 interop soak fuzz bench bench-quick clean \
	install install-files test-clients

build:
	$(CARGO) build --release

# Formatting and lints first: they are the fastest to fail. The layer zips are built first
# because tests unpack them as Lambda would.
test: lint layer
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# The seed Perl function through `bootstrap invoke`: the same code path as the Lambda loop.
demo: build
	$(BIN) check --task-root examples/perl --handler lambda_script.handler
	$(BIN) invoke --task-root examples/perl --handler lambda_script.handler examples/events/hello.json
	@echo

# Static, stripped binaries for both Lambda architectures, checked and measured.
binaries:
	rustup target add $(X86_64_TARGET) $(ARM64_TARGET) >/dev/null
	$(CARGO) build --release --target $(X86_64_TARGET)
	$(CARGO) build --release --target $(ARM64_TARGET)
	@for bin in $(X86_64_BIN) $(ARM64_BIN); do \
	    ldd $$bin 2>&1 | grep -Eq 'not a dynamic executable|statically linked' || \
	        { echo "$$bin is dynamically linked: $$(ldd $$bin 2>&1)" >&2; exit 1; }; \
	    size=$$(stat -c %s $$bin); \
	    echo "$$bin: $$size bytes, static"; \
	    if [ $$size -gt $(MAX_BINARY_BYTES) ]; then echo "$$bin is over $(MAX_BINARY_BYTES) bytes" >&2; exit 1; fi; \
	done

# dist/bootstrap-layer-{x86_64,arm64}.zip: bootstrap at the root (run bit kept),
# interpreters.toml and layers/, the layout Lambda unpacks into /opt. Plus one zip per example.
layer: binaries
	rm -rf dist && mkdir -p dist
	@for arch in x86_64 arm64; do \
	    bin=$(X86_64_BIN); [ $$arch = arm64 ] && bin=$(ARM64_BIN); \
	    mkdir -p dist/layer-$$arch && cp $$bin dist/layer-$$arch/bootstrap && \
	    cp interpreters.toml dist/layer-$$arch/ && cp -R layers dist/layer-$$arch/layers && \
	    (cd dist/layer-$$arch && zip -qrX ../bootstrap-layer-$$arch.zip bootstrap interpreters.toml layers) || exit 1; \
	done
	@for example in $(EXAMPLES); do \
	    (cd examples/$$example && zip -qrX ../../dist/example-$$example.zip .) || exit 1; \
	done
	rm -rf dist/layer-x86_64 dist/layer-arm64
	@ls -l dist

# The whole integration suite against the arm64 binary, run under qemu-user (the soak with
# 1,000 events: emulation makes each one slow, and the native run does the full 10,000).
test-arm64:
	$(CARGO) build --release --target $(ARM64_TARGET)
	BOOTSTRAP_TEST_BIN=$(CURDIR)/$(ARM64_BIN) BOOTSTRAP_TEST_EMULATOR=$(QEMU_ARM64) \
	    BOOTSTRAP_SOAK_EVENTS=1000 $(CARGO) test --test it

install: build install-files
	@echo "installed $(PREFIX)/bin/bootstrap; make sure $(PREFIX)/bin is on your PATH"

install-files:
	rm -rf $(PREFIX)/lib/bootstrap
	mkdir -p $(PREFIX)/bin $(PREFIX)/lib/bootstrap
	cp $(INSTALL_BIN) $(PREFIX)/lib/bootstrap/bootstrap
	cp interpreters.toml $(PREFIX)/lib/bootstrap/
	cp -R layers $(PREFIX)/lib/bootstrap/layers
	ln -sfn ../lib/bootstrap/bootstrap $(PREFIX)/bin/bootstrap

# A virtualenv with the real boto3 and AWS CLI that tests/it/serve.rs drives (from PyPI).
test-clients: $(TEST_VENV)/.installed

$(TEST_VENV)/.installed: tests/requirements.txt
	rm -rf $(TEST_VENV)
	python3 -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

# Our bootstrap against cargo-lambda's Runtime API emulator, a peer we did not write.
interop:
	interop/run

# Every runtime side by side on a loopback Runtime API (bench/README.md); under 5 minutes.
bench:
	bench/run

# The same with a few invocations per row: proves the benchmark works (CI), measures nothing.
bench-quick:
	bench/run --quick

# 100,000 events through one bootstrap (the test suite runs 10,000): RSS, descriptors, children.
soak:
	BOOTSTRAP_SOAK_EVENTS=100000 $(CARGO) test --release --test it soak -- --nocapture

# Each cargo-fuzz target for FUZZ_SECONDS (nightly toolchain; installs cargo-fuzz if missing).
FUZZ_SECONDS ?= 60
fuzz:
	fuzz/run $(FUZZ_SECONDS)

clean:
	$(CARGO) clean
	rm -rf dist
