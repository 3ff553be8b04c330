# syntax=docker/dockerfile:1
#
# runbox in a non-root container, serving MCP on stdio:
#
#   docker build -t runbox .
#   docker run -i --rm --read-only --cap-drop ALL --security-opt no-new-privileges \
#     --pids-limit 256 --memory 2g --cpus 2 --network none \
#     --tmpfs /tmp:rw,noexec,nosuid,size=256m \
#     -v "$PWD":/workspace -v runbox-audit:/var/lib/runbox/audit -v runbox-cache:/var/cache/runbox \
#     runbox
#
# Build arguments:
#   BASE          the runtime stage's base image (default the official Debian image);
#                 scripts/container-image passes a debootstrap-made Debian when no registry answers.
#   RUNBOX_BUILD  `source` (default): compile runbox in the `build-source` stage, with exactly
#                 the commands `scripts/build-release` runs (a CI test checks this file against
#                 that script, so the two cannot drift apart). `prebuilt`: copy `prebuilt/runbox`
#                 from the build context instead (scripts/container-image stages that context
#                 from CI's release build, so CI does not compile runbox twice).

ARG BASE=debian:bookworm-slim
ARG RUNBOX_BUILD=source

FROM rust:1.95-bookworm AS build-source
WORKDIR /src
COPY . .
RUN ./scripts/build-release /out

FROM scratch AS build-prebuilt
COPY prebuilt/runbox /out/runbox

FROM build-${RUNBOX_BUILD} AS build

FROM ${BASE} AS runtime
# git is the default native command; ca-certificates only for completeness of git's view. A base
# that already has both (the debootstrap one) needs no network here.
RUN if ! dpkg -s git ca-certificates >/dev/null 2>&1; then \
      apt-get update \
      && apt-get install -y --no-install-recommends git ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# A dedicated unprivileged user with a fixed uid/gid, so volume ownership is predictable.
RUN groupadd --system --gid 10001 runbox \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin runbox \
 && mkdir -p /workspace /var/lib/runbox/audit /var/cache/runbox/modules \
 && chown 10001:10001 /workspace /var/lib/runbox /var/lib/runbox/audit /var/cache/runbox /var/cache/runbox/modules \
 && chmod 0700 /var/lib/runbox/audit /var/cache/runbox/modules
COPY --from=build /out/runbox /usr/local/bin/runbox
COPY docker/policy.toml /etc/runbox/policy.toml
# The built-in command suite compiled at build time by the binary itself, for this engine's
# configuration, into a root-owned read-only directory the server checks before its writable
# cache: a fresh container's first call does not compile. (A machine whose CPU lacks a feature
# the build machine had fails the compatibility check and compiles into the cache as before.)
RUN runbox precompile --config /etc/runbox/policy.toml --out /usr/lib/runbox/modules \
 && chown -R 0:0 /usr/lib/runbox \
 && find /usr/lib/runbox -type d -exec chmod 0755 {} + \
 && find /usr/lib/runbox -type f -exec chmod 0444 {} +
VOLUME ["/workspace", "/var/lib/runbox/audit", "/var/cache/runbox"]
USER 10001:10001
ENV HOME=/nonexistent RUST_LOG=warn,runbox=info
ENTRYPOINT ["runbox", "serve", "--config", "/etc/runbox/policy.toml"]
