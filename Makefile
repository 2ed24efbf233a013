# earshot: the two commands of the README.
#   make run   – build and run `earshot serve` on the embedded in-memory store
#   make test  – install what the tests need, then run the whole test suite
# Both install missing Debian packages first (scripts/bootstrap.sh).

SHARED_MODEL := $(abspath ../shared/models/ggml-tiny.en.bin)
# The server runs the q8_0 file when it is there and no model was named: per stream decode
# it used 0.8x the CPU of f16 at the same words (README, "Live capacity"). The tests keep
# the f16 file, the reference the WER bounds were set on.
QUANT_MODEL := $(abspath ../shared/models/ggml-tiny.en-q8_0.bin)
ifeq ($(origin EARSHOT_MODEL),undefined)
ifneq ($(wildcard $(QUANT_MODEL)),)
RUN_MODEL := $(QUANT_MODEL)
endif
endif
ifneq ($(wildcard $(SHARED_MODEL)),)
export EARSHOT_MODEL ?= $(SHARED_MODEL)
endif

.PHONY: run test build lint bench fmt

run:
	./scripts/bootstrap.sh run
	$(if $(RUN_MODEL),EARSHOT_MODEL=$(RUN_MODEL)) cargo run --release -p earshot -- serve

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
