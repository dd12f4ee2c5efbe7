# tokenmesh container image. Two stages: the build stage installs every dependency and runs
# `npm run build`; the runtime stage holds only the build output (dist/ and bin/), the package
# files and the production dependencies (`npm ci --omit=dev`): no tsx, TypeScript or other dev
# tooling at run time. test/deploy/image-start.test.ts reads this file and runs the runtime
# stage's install and CMD outside the repo, so what is written here is what CI checks.
#
#   docker build -t tokenmesh .
#   docker run --rm -p 50051:50051 -p 9464:9464 tokenmesh
#   docker run --rm -v "$PWD/my.yaml:/etc/tokenmesh/config.yaml:ro" tokenmesh

FROM node:20-bookworm-slim AS build
WORKDIR /src
# Dependencies first, so a source change does not reinstall them. The TypeScript client is an
# npm workspace of the repo: npm ci needs its package.json.
COPY package.json package-lock.json ./
COPY clients/typescript/package.json clients/typescript/
RUN npm ci --no-audit --no-fund
COPY . .
# The commit for dist/build-info.json (the build context has no .git): --build-arg TOKENMESH_COMMIT=...
ARG TOKENMESH_COMMIT=unknown
RUN TOKENMESH_COMMIT="$TOKENMESH_COMMIT" npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY config/container.yaml /etc/tokenmesh/config.yaml
# /var/lib/tokenmesh is the data directory (a volume): the node user (uid 1000) owns it.
RUN mkdir -p /var/lib/tokenmesh && chown node:node /var/lib/tokenmesh
USER node
VOLUME ["/etc/tokenmesh", "/var/lib/tokenmesh"]
# Clients (gRPC), peers (Merge), Prometheus metrics, HTTP (JSON and the /health, /ready probes).
EXPOSE 50051 7051 9464 8080
# Healthy while the replica admits: GET /ready on the HTTP port (503 while a mesh replica warms up
# or drains). The image has no curl; Node's fetch asks. A config without httpListen on 8080 needs
# its own check, e.g. `tokenmesh health --address 127.0.0.1:50051` (gRPC health, TLS options too).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:8080/ready', { signal: AbortSignal.timeout(3000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# exec form: node is PID 1 and gets SIGTERM itself, so `docker stop` drains in-flight calls.
CMD ["node", "bin/tokenmesh.mjs", "serve", "--config", "/etc/tokenmesh/config.yaml"]
