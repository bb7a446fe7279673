# databay: multi-stage build, small non-root runtime image.
#
#   docker build -t databay .
#   docker run --rm -v "$PWD/config:/etc/databay:ro" databay
#
# The config is read from /etc/databay/databay.toml (mount a directory
# holding it there, or pass another path: `docker run ... databay run /path`).
# Relative paths in the config resolve against the config file's directory.
# The admin endpoint binds 127.0.0.1 by default; to reach it from outside the
# container set `[admin] listen = "0.0.0.0:9477"` and publish the port.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin databay \
 && strip target/release/databay

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/databay --create-home databay
COPY --from=build /src/target/release/databay /usr/local/bin/databay
COPY config/quickstart.toml /etc/databay/databay.toml
# The quickstart writes its CSV beside the config, under out/.
RUN install -d -o databay -g databay /etc/databay/out
USER databay
WORKDIR /var/lib/databay
EXPOSE 9477
# tini forwards SIGTERM so `docker stop` triggers databay's graceful shutdown.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/databay"]
CMD ["run", "/etc/databay/databay.toml"]
