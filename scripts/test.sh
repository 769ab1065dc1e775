#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine (run as root):
#   bash scripts/test.sh
# Installs and starts what the tests talk to (NATS with JetStream, PostgreSQL, MariaDB) when
# missing or down, then runs formatting, lint and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # name port seconds
  for _ in $(seq 1 "$3"); do port_open "$2" && return 0; sleep 1; done
  echo "error: $1 is not listening on 127.0.0.1:$2 after $3 s" >&2; return 1
}

need_packages=()
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need_packages+=(nats-server)
command -v pg_ctlcluster >/dev/null || need_packages+=(postgresql)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need_packages+=(mariadb-server)
command -v gcc >/dev/null || need_packages+=(build-essential)
command -v python3 >/dev/null || need_packages+=(python3 python3-pip)
if [ ${#need_packages[@]} -gt 0 ]; then
  log "installing ${need_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  log "installing the Rust toolchain (rustup)"
  command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl ca-certificates >/dev/null; }
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
  export PATH="$HOME/.cargo/bin:$PATH"
fi

if ! port_open 4222; then
  log "starting NATS (JetStream)"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port NATS 4222 30
fi
if ! port_open 5432; then
  log "starting PostgreSQL"
  cluster_version=$(ls /etc/postgresql | sort -V | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main start
  wait_port PostgreSQL 5432 60
fi
if ! port_open 3306; then
  log "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_port MariaDB 3306 60
fi
# The tests connect as postgres/root without passwords over TCP (the machine's defaults);
# make sure the databases they start from exist.
if command -v psql >/dev/null; then
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
fi
if command -v mariadb >/dev/null; then
  mariadb -h 127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS test" >/dev/null 2>&1 || true
fi

# The seed's Python consumer (scripts/seed_consumer.py) is run by the event tests.
if ! python3 -c "import nats" 2>/dev/null; then
  log "installing nats-py (for the seed's consumer)"
  command -v pip3 >/dev/null || python3 -m pip --version >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null; }
  python3 -m pip install --quiet nats-py 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages nats-py
fi

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
cargo test --workspace --locked
