# syntax=docker/dockerfile:1
#
# Both binaries (binance-extractor, binance-sim) in a small Debian image, run by an
# unprivileged user (uid 10001). Build from the repository root:
#
#   docker build -t binance-extractor:0.1.0 .
#   docker run --rm -v klines:/data binance-extractor:0.1.0 sync --period 15m   # SQLite in a volume
#   docker run --rm -p 8080:8080 --entrypoint binance-sim binance-extractor:0.1.0 --listen 0.0.0.0:8080
#
# crates/binance-extractor/tests/manifests.rs checks this file (stages, user, entrypoint,
# binaries, every workspace member's manifest) and .dockerignore.

# ---- build --------------------------------------------------------------------------------
# The toolchain the project is tested with (the workspace's rust-version is the minimum).
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build

# 1. Dependencies only: the manifests, the lock file and empty sources. This layer holds most
#    of the build time and is reused until a Cargo.toml or Cargo.lock changes.
#    Every workspace member (crates/*) must be copied here, or --locked fails.
COPY Cargo.toml Cargo.lock ./
COPY crates/binance-spec/Cargo.toml crates/binance-spec/
COPY crates/binance-extractor/Cargo.toml crates/binance-extractor/
COPY crates/binance-sim/Cargo.toml crates/binance-sim/
COPY crates/bench/Cargo.toml crates/bench/
RUN for crate in crates/*/; do \
        mkdir -p "${crate}src" \
        && echo 'fn main() {}' > "${crate}src/main.rs" \
        && touch "${crate}src/lib.rs"; \
    done \
    && cargo build --release --locked -p binance-extractor -p binance-sim \
    && rm -rf crates/*/src

# 2. The real sources (and the SQL migrations, embedded at compile time). COPY keeps the files'
#    own modification times, older than the empty sources' build: touch them so that cargo
#    rebuilds the workspace crates instead of keeping the empty ones. The release profile keeps
#    line tables for backtraces; compressing them shrinks the extractor from 96 MB to 38 MB,
#    and backtraces still name file and line.
COPY crates crates
RUN find crates -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p binance-extractor -p binance-sim \
    && objcopy --compress-debug-sections=zlib target/release/binance-extractor \
    && objcopy --compress-debug-sections=zlib target/release/binance-sim

# ---- runtime ------------------------------------------------------------------------------
FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="binance-extractor" \
      org.opencontainers.image.description="Pulls Binance klines into SQLite, PostgreSQL or MySQL, fills the holes, and announces each extraction on NATS." \
      org.opencontainers.image.licenses="MIT"

# CA certificates for HTTPS to Binance and TLS to the database and NATS; nothing else is needed
# (rustls, SQLite compiled in). The version is whatever bookworm's security updates ship.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 extractor \
    && useradd --system --uid 10001 --gid extractor --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin extractor \
    && install -d -o extractor -g extractor -m 0750 /data

COPY --from=builder /build/target/release/binance-extractor /build/target/release/binance-sim /usr/local/bin/

# Numeric, so that Kubernetes' runAsNonRoot can verify it without a runAsUser.
USER 10001:10001
# The default DATABASE_URL, sqlite://binance-klines.db, lands here.
WORKDIR /data
ENTRYPOINT ["binance-extractor"]
CMD ["--help"]
