# earshot: the two commands of the README.
#   make run   – build and run `earshot serve` on the embedded in-memory store
#   make test  – install what the tests need, then run the whole test suite
# Both install missing Debian packages first (scripts/bootstrap.sh).

SHARED_MODEL := $(abspath ../shared/models/ggml-tiny.en.bin)
ifneq ($(wildcard $(SHARED_MODEL)),)
export EARSHOT_MODEL ?= $(SHARED_MODEL)
endif

.PHONY: run test build lint bench fmt

run:
	./scripts/bootstrap.sh run
	cargo run --release -p earshot -- serve

test:
	./scripts/bootstrap.sh test
	cargo test --workspace

build:
	./scripts/bootstrap.sh run
	cargo build --release -p earshot

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench:
	cargo bench --workspace
