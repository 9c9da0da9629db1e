# syntax=docker/dockerfile:1
# The ctxsync service: `docker build -t ctxsync .`, then `docker run -p 8080:8080 -v ctxsync:/var/lib/ctxsync
# ctxsync` for one process on SQLite; compose.yaml runs two replicas on PostgreSQL.

# The toolchain the project builds and tests with (`rustc --version`); move both together.
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the target folder between builds of the image; the binary
# is copied out of the target folder because a cache mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ctxsync \
    && install -D -m 0755 target/release/ctxsync /out/ctxsync \
    && mkdir -p /out/data

# glibc, libgcc and the CA certificates the sources' TLS checks against; no shell, no package
# manager, and a `nonroot` user (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ctxsync /usr/local/bin/ctxsync
# Owned by the service's user, so a new named volume mounted here is writable by it.
COPY --from=build --chown=65532:65532 /out/data /var/lib/ctxsync
ENV CTXSYNC_DATA_DIR=/var/lib/ctxsync \
    CTXSYNC_LISTEN=0.0.0.0:8080 \
    CTXSYNC_METRICS_LISTEN=0.0.0.0:9464 \
    CTXSYNC_LOG_FORMAT=json
USER 65532:65532
VOLUME ["/var/lib/ctxsync"]
EXPOSE 8080 9464
# `ctxsync healthcheck` asks the CTXSYNC_LISTEN port's /readyz: unhealthy while the database is
# unreachable, healthy again when the replica has reconnected by itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/ctxsync", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/ctxsync"]
CMD ["serve"]
