# syntax=docker/dockerfile:1
# Build stage: compiler toolchain for the native ICMP module, dev dependencies for tsc and vite.
FROM node:20-bookworm-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY binding.gyp ./
COPY scripts ./scripts
COPY native ./native
RUN npm ci
COPY . .
# build/ holds the native module when it compiled; keep the folder either way for the COPY below.
RUN npm run build && npm prune --omit=dev && mkdir -p build

# Runtime stage: only what `coalmine run` needs, as the unprivileged `node` user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/bin ./bin
COPY --from=build --chown=node:node /app/build ./build
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 9777
VOLUME ["/data"]
ENTRYPOINT ["bin/coalmine"]
CMD ["run", "--config", "/etc/coalmine/config.yaml", "--listen", "0.0.0.0:9777"]
