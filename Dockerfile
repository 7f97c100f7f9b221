# syntax=docker/dockerfile:1
# One image for modelcache-agent (the entrypoint), modelcache-coordinator and modelcachectl:
#   docker build -t modelcache/modelcache:0.1.0 .
#
# Packages come from scripts/packages.txt, the list scripts/setup.sh installs: its `build` lines
# in the build stage, its `runtime` lines in the runtime stage. This file names no package
# itself, so the two cannot drift (tests/repository/packages_test.cc checks both).

FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
COPY scripts/packages.txt /tmp/packages.txt
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(awk '$1 == "build" {print $2}' /tmp/packages.txt) \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The unit tests run here: an image whose tests fail is not built. (Integration tests need real
# servers and run with scripts/setup.sh on a machine, not in the image build.)
RUN --mount=type=cache,target=/root/.cache/ccache \
    scripts/build.sh \
 && ctest --test-dir build -L unit --output-on-failure \
 && install -D -s -m 0755 build/agent/modelcache-agent /out/modelcache-agent \
 && install -D -s -m 0755 build/coordinator/modelcache-coordinator /out/modelcache-coordinator \
 && install -D -s -m 0755 build/cli/modelcachectl /out/modelcachectl

FROM debian:bookworm-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
COPY scripts/packages.txt /tmp/packages.txt
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(awk '$1 == "runtime" {print $2}' /tmp/packages.txt) \
 && rm -rf /var/lib/apt/lists/* /tmp/packages.txt
# uid/gid 10001, as the manifests in deploy/ expect (runAsUser: 10001).
RUN groupadd --system --gid 10001 modelcache \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin modelcache
COPY --from=build /out/modelcache-agent /out/modelcache-coordinator /out/modelcachectl /usr/local/bin/
LABEL org.opencontainers.image.title="modelcache" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.description="Shared model cache for Kubernetes inference pods: node agent, coordinator, CLI"
USER 10001:10001
# Agent: metrics, /healthz, /readyz. Coordinator: gRPC 7070, metrics 9465.
EXPOSE 9464 7070 9465
ENTRYPOINT ["/usr/local/bin/modelcache-agent"]
