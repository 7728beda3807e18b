# syntax=docker/dockerfile:1
# dualtrack gateway image: `docker build -t dualtrack:0.1.0 .`
# run: docker run -p 8080:8080 -v $PWD/config/gateway.yaml:/etc/dualtrack/gateway.yaml:ro dualtrack:0.1.0
#
# the base is the current Node LTS (24; Node 20 reached end of life on 2026-04-30), pinned to an
# exact release. Pin it by digest too where you build: resolve it once with
#   docker buildx imagetools inspect node:24.22.3-bookworm-slim --format '{{json .Manifest.Digest}}'
# and build with --build-arg NODE_IMAGE=node:24.22.3-bookworm-slim@sha256:<that digest>
# (the registry is not reachable from where this file is tested, so no digest is written here)
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# ---- build: compile TypeScript to dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the root `prepare` script would run the build before the sources are copied;
# no dependency in package-lock.json has an install script (keep it that way, or drop the flag
# and copy the sources first)
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# the build also compresses the console's files (brotli, gzip) into dist/console-assets/
COPY console ./console
COPY scripts/precompress-console.js ./scripts/
RUN npm run build

# ---- production dependencies, installed with npm in a stage of their own ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts

# ---- runtime: production dependencies, compiled code; no compiler, no npm ----
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="dualtrack" \
      org.opencontainers.image.description="A gateway that moves users from a legacy transaction system to its replacement in sticky cohorts, with shadow traffic and an instant rollback" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
ENV NODE_ENV=production
# npm, npx and corepack are not needed to run the gateway: less code, fewer CVEs to track
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY config ./config
# the console's page (its libraries come from node_modules)
COPY console ./console
# the default config, for a plain `docker run`; Kubernetes and compose mount their own over it
COPY config/gateway.yaml /etc/dualtrack/gateway.yaml
# the code stays root-owned and read-only to the app; var/ holds the file state store
# (state.file: var/state.json), writable by the app user (an emptyDir on Kubernetes)
RUN mkdir -p /app/var && chown node:node /app/var
USER node

# 8080: proxied traffic; 9090: admin API, /metrics, /healthz, /readyz
# the admin listener must bind 0.0.0.0 (admin.host) to be reached from outside the container
EXPOSE 8080 9090

# node runs as PID 1 with no init: the gateway installs its own SIGTERM/SIGINT handlers (not ready,
# drain for server.drainDelayMs, close, exit; a second signal exits at once), and it starts no
# child processes, so there are no zombies to reap. `docker run --init` is not needed
STOPSIGNAL SIGTERM

# liveness from inside the container, over loopback (admin.host 127.0.0.1 or 0.0.0.0 both answer);
# plain node:http, since the slim image has no curl or wget
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "require('node:http').get('http://127.0.0.1:9090/healthz', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).setTimeout(2000, () => process.exit(1))"]

ENTRYPOINT ["node", "bin/dualtrack.js"]
CMD ["start", "--config", "/etc/dualtrack/gateway.yaml"]
