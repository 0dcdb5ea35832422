# datagen: build with the Rust image, run on slim Debian as a non-root user.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
# jemalloc (the server's allocator) is built from source with make.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first: this layer is rebuilt only when Cargo.toml/Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/batch.rs \
    && echo 'fn main() {}' > benches/http.rs \
    && echo 'fn main() {}' > benches/load.rs \
    && cargo build --release --locked --bin datagen \
    && rm -rf src benches
COPY config ./config
COPY schemas ./schemas
COPY benches ./benches
COPY src ./src
# The stub build left newer artifacts for the crate itself; make sure it is rebuilt.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin datagen \
    && ./target/release/datagen --version

FROM ${RUNTIME_IMAGE}
# curl serves the HEALTHCHECK; nothing else is needed at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/datagen --shell /usr/sbin/nologin datagen \
    && mkdir -p /var/lib/datagen/data /var/lib/datagen/state \
    && chown -R datagen:datagen /var/lib/datagen
COPY --from=builder /src/target/release/datagen /usr/local/bin/datagen
WORKDIR /var/lib/datagen
USER 10001:10001
ENV DATAGEN__SERVER__BIND=0.0.0.0:8080 \
    DATAGEN__PATHS__DATA_DIR=/var/lib/datagen/data \
    DATAGEN__PATHS__STATE_DIR=/var/lib/datagen/state \
    RUST_LOG=info
VOLUME ["/var/lib/datagen/data", "/var/lib/datagen/state"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
# datagen is PID 1 and handles SIGTERM itself (graceful shutdown).
ENTRYPOINT ["datagen"]
CMD ["serve"]
