# Build: SQLite and libpq are compiled from source by cargo, so the builder needs only Rust and a
# C compiler, and the runtime image needs no database client libraries.
FROM rust:1-bookworm AS build
WORKDIR /src
# Everything Cargo.toml names (the bench target included) and everything the binary embeds.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
COPY migrations ./migrations
COPY config ./config
RUN cargo build --release --locked --bin aseptic

FROM debian:bookworm-slim
# A fixed uid, so files on volumes and mounted secrets can be given to it from the host.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/aseptic --create-home aseptic \
    && chmod 0700 /var/lib/aseptic
COPY --from=build /src/target/release/aseptic /usr/local/bin/aseptic
COPY config /etc/aseptic
ENV ASEPTIC_CONFIG_DIR=/etc/aseptic
USER aseptic
WORKDIR /var/lib/aseptic
# The database (SQLite), exports, the outbox and the export signing key live here: mount a volume.
VOLUME ["/var/lib/aseptic"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 \
    CMD ["aseptic", "check-ready", "--address", "127.0.0.1:8080"]
ENTRYPOINT ["aseptic"]
CMD ["serve", "--bind", "0.0.0.0:8080"]
