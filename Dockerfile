# syntax=docker/dockerfile:1
# One image for every Keygate process in docker-compose.yml: the gateway (the default command), the admin API
# (`node --import tsx admin-api/main.ts`) and the demo upstreams (`node --import tsx examples/main.ts NAME`).
# Build: docker build -t keygate .     Settings: environment variables, see the README's configuration reference.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: every dependency, and only sources that type-check go further --------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The workspace package @keygate/verify (the gateway, the admin API and the demos import it) is built below.
COPY packages/verify/package.json ./packages/verify/
RUN npm ci --ignore-scripts
COPY . .
RUN npm run typecheck && npm run build:verify

# --- runtime: production dependencies and the sources, as an unprivileged user -----------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/verify/package.json ./packages/verify/
# tsx, which runs the TypeScript sources, is a production dependency. --ignore-scripts: `prepare` needs the
# TypeScript compiler, a dev dependency, and builds nothing the image runs.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/tsconfig.json ./
COPY --from=build /app/admin-api ./admin-api
COPY --from=build /app/cli ./cli
COPY --from=build /app/config ./config
COPY --from=build /app/core ./core
COPY --from=build /app/examples ./examples
COPY --from=build /app/gateway ./gateway
COPY --from=build /app/packages/verify ./packages/verify
# The embedded database's directory (used only without DATABASE_URL) must be writable by the app user.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 8000 9090
# Every Keygate process answers /healthz on PORT (default 8000) without credentials; the slim image has no
# curl, so Node asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node gets SIGTERM directly (no npm or shell in between): it drains, then exits.
CMD ["node", "--import", "tsx", "gateway/main.ts"]
