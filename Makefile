# The README's commands: `make demo` runs an example handler, `make test` runs every check.

CARGO ?= cargo
BIN := target/release/bootstrap
# The layer binary is static (musl), so it runs on provided.al2023 and provided.al2 alike.
LAYER_TARGET ?= x86_64-unknown-linux-musl
LAYER_BIN := target/$(LAYER_TARGET)/release/bootstrap

.PHONY: build test lint demo layer clean

build:
	$(CARGO) build --release

# Formatting and lints first: they are the fastest to fail.
test: lint
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# The seed Perl function through `bootstrap invoke`: the same code path as the Lambda loop.
demo: build
	$(BIN) check --task-root examples/perl --handler lambda_script.handler
	$(BIN) invoke --task-root examples/perl --handler lambda_script.handler examples/events/hello.json
	@echo

# dist/bootstrap-layer.zip: bootstrap at the root (run bit kept), interpreters.toml, layers/.
layer:
	$(CARGO) build --release --target $(LAYER_TARGET)
	rm -rf dist/layer && mkdir -p dist/layer
	cp $(LAYER_BIN) dist/layer/bootstrap
	cp interpreters.toml dist/layer/
	cp -R layers dist/layer/layers
	rm -f dist/bootstrap-layer.zip
	cd dist/layer && zip -qrX ../bootstrap-layer.zip bootstrap interpreters.toml layers
	@ls -l dist/bootstrap-layer.zip $(LAYER_BIN)

clean:
	$(CARGO) clean
	rm -rf dist
