# syntax=docker/dockerfile:1
# One image for every Keygate process in docker-compose.yml, all compiled JavaScript (scripts/entry-points.ts
# names them): the gateway (the default command), the admin API (`node dist/admin-api/main.js`), the demo
# upstreams (`node dist/examples/main.js NAME`) and the CLI (`node dist/cli/keygate.js`).
# Build: docker build -t keygate .     Settings: environment variables, see the README's configuration reference.

# Node 24, the active LTS line; Keygate also runs on Node 20.18+ (see the README's supported runtimes).
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: every dependency; sources that type-check are compiled to dist/ --------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The workspace package @keygate/verify (the gateway, the admin API and the demos import it) is built below.
COPY packages/verify/package.json ./packages/verify/
RUN npm ci --ignore-scripts
COPY . .
RUN npm run typecheck && npm run build

# --- runtime: production dependencies and the compiled code, as an unprivileged user -----------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/verify/package.json ./packages/verify/
# No dev dependency (tsx, the TypeScript compiler): the image runs what the build stage compiled.
# --ignore-scripts: `prepare` needs the TypeScript compiler and builds nothing the image runs.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
# dist/ holds the compiled code and the SQL migrations beside it; config/ the default route file, read from
# the working directory (KEYGATE_CONFIG).
COPY --from=build /app/dist ./dist
COPY --from=build /app/config ./config
# The workspace package @keygate/verify, built in the build stage (the compiled code imports it).
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
CMD ["node", "dist/gateway/main.js"]
