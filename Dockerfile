# Build: SQLite and libpq are compiled from source by cargo, so the builder needs only Rust and a
# C compiler, and the runtime image needs no database client libraries.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/aseptic --create-home aseptic
COPY --from=build /src/target/release/aseptic /usr/local/bin/aseptic
COPY config /etc/aseptic
ENV ASEPTIC_CONFIG_DIR=/etc/aseptic
USER aseptic
WORKDIR /var/lib/aseptic
EXPOSE 8080
ENTRYPOINT ["aseptic"]
CMD ["serve", "--bind", "0.0.0.0:8080"]
