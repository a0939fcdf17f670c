# Build: the production profile (release with fat LTO, Cargo.toml) of telemetry-manager.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
RUN cargo build --profile production --locked --bin telemetry-manager \
 && strip target/production/telemetry-manager

# Run: distroless with glibc and CA certificates, no shell, non-root numeric user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/production/telemetry-manager /usr/local/bin/telemetry-manager
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["/usr/local/bin/telemetry-manager"]
CMD ["run"]
