# syntax=docker/dockerfile:1
# The kube-lc-proxy image. Build, options and the reasons behind them: docs/deploy.md.
#
# Debian bookworm (iptables 1.8.9) rather than a newer base: keep the image's iptables no newer
# than the nodes' where you can, since rules written by a newer iptables-nft may not list cleanly
# with an older one on the host.
ARG NODE_IMAGE=node:26-bookworm-slim

# ---- build: compile TypeScript to dist/ ----
# On the build platform: dist/ and the dependencies are plain JavaScript, so a multi-arch build
# (docker buildx --platform linux/amd64,linux/arm64) compiles once, without emulation.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Dependencies first and without install scripts (the `prepare` build needs src/, copied below),
# so this layer stays cached until the lockfile changes.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs ./scripts/
COPY src ./src
RUN npm run build

# ---- runtime: node, iptables, dist/ and production dependencies only ----
FROM ${NODE_IMAGE} AS runtime
# nft or legacy: must match the iptables backend the nodes use (docs/deploy.md, "Known limits").
# util-linux (already in the base image) provides prlimit, which raises the soft open-file limit.
ARG IPTABLES_BACKEND=nft
RUN apt-get update \
    && apt-get install -y --no-install-recommends iptables util-linux \
    && update-alternatives --set iptables "/usr/sbin/iptables-${IPTABLES_BACKEND}" \
    && update-alternatives --set ip6tables "/usr/sbin/ip6tables-${IPTABLES_BACKEND}" \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
# glibc malloc: one arena, and keep freed memory at the top of the heap instead of trimming it
# at once. Node allocates a 64 KiB buffer for every socket read; with the defaults glibc keeps
# giving those pages back and faulting fresh ones in, which costs about a third of bulk
# throughput (docs/operations.md, "Memory allocator"; the benchmarks use the same settings).
ENV MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=67108864 MALLOC_TOP_PAD_=16777216
# V8: a young generation of at most 1 MiB per semi-space, instead of what the start-up burst grew
# it to: about 6 MiB less resident at rest, no CPU cost measured on the data path
# (docs/operations.md, "V8 heap flags").
ENV NODE_OPTIONS=--max-semi-space-size=1
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts \
    && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
# `kube-lc-proxy status` and `kube-lc-proxy cleanup` by name, for kubectl exec and one-shot pods.
RUN printf '#!/bin/sh\nexec node /app/bin/kube-lc-proxy.js "$@"\n' >/usr/local/bin/kube-lc-proxy \
    && chmod 0755 /usr/local/bin/kube-lc-proxy
# No USER: `run` with iptables needs CAP_NET_ADMIN, which Kubernetes can only give a non-root
# process through file capabilities. The DaemonSet runs UID 0 with NET_ADMIN as its only
# capability (daemonset/daemonset.yaml says why). `status` and `--intercept none` need no
# privilege and run as any user.
ENTRYPOINT ["node", "/app/bin/kube-lc-proxy.js"]
CMD ["run"]
