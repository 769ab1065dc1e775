#!/usr/bin/env bash
# Builds and runs binance-extractor (release) with the given arguments; installs the Rust
# toolchain and a C compiler first when the machine has none (fresh Debian, as root).
#
#   bash scripts/run.sh sync --period 15m             # from Binance into sqlite://binance-klines.db
#   bash scripts/run.sh --sim sync --period 15m       # the same against a local binance-sim
#
# With --sim, a simulator is started on a free local port for the duration of the run and
# BINANCE_API_URL points at it (no internet needed).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cc >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq build-essential ca-certificates curl >/dev/null
fi
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
if ! command -v cargo >/dev/null; then
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi

sim=0
if [ "${1:-}" = "--sim" ]; then sim=1; shift; fi
cargo build --release --quiet -p binance-extractor -p binance-sim

if [ "$sim" = 1 ]; then
  fifo=$(mktemp -u); mkfifo "$fifo"
  ./target/release/binance-sim --listen 127.0.0.1:0 >"$fifo" &
  sim_pid=$!
  trap 'kill $sim_pid 2>/dev/null || true; rm -f "$fifo"' EXIT
  read -r first_line <"$fifo"
  # Keep draining the simulator's output so it never blocks.
  cat "$fifo" >/dev/null &
  export BINANCE_API_URL="${first_line#listening on }"
  echo "binance-sim: $BINANCE_API_URL" >&2
fi
./target/release/binance-extractor "$@"
