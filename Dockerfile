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
# Clients (gRPC), peers (Merge), Prometheus metrics.
EXPOSE 50051 7051 9464
# The gRPC health check on the client port (plaintext, as the baked config serves it; with
# tls.clientCa set, run your own check with --tls-ca/--tls-cert/--tls-key).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["node", "bin/tokenmesh.mjs", "health", "--address", "127.0.0.1:50051", "--timeout-ms", "3000"]
# exec form: node is PID 1 and gets SIGTERM itself, so `docker stop` drains in-flight calls.
CMD ["node", "bin/tokenmesh.mjs", "serve", "--config", "/etc/tokenmesh/config.yaml"]
