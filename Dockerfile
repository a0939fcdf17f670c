# Placeholder until the delivery issue: builds the binary into a small non-root image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
RUN cargo build --release --locked --bin telemetry-manager

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/telemetry-manager /usr/local/bin/telemetry-manager
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/telemetry-manager"]
