# syntax=docker/dockerfile:1
# dualtrack gateway image: `docker build -t dualtrack:0.1.0 .`
# run: docker run -p 8080:8080 -v $PWD/config/gateway.yaml:/etc/dualtrack/gateway.yaml:ro dualtrack:0.1.0

# ---- build: compile TypeScript to dist/ ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the root `prepare` script would run the build before the sources are copied;
# no dependency in package-lock.json has an install script (keep it that way, or drop the flag
# and copy the sources first)
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies, compiled code, no compiler ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY config ./config
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
