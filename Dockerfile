# syntax=docker/dockerfile:1
# Build stage: compile the release binary (SQLite is bundled, MySQL and Redis clients are pure
# Rust, so the runtime image needs no client libraries).
FROM rust:1.91-bookworm AS build
WORKDIR /src
# Dependencies first, so code changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src src
COPY migrations migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

# Runtime stage: a slim image running as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --create-home app
WORKDIR /app
COPY --from=build /src/target/release/user-api /usr/local/bin/user-api
USER app
ENV BIND=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["user-api", "healthcheck"]
ENTRYPOINT ["user-api"]
CMD ["serve"]
