# labelgate: build the TypeScript, then run the compiled gateway as the unprivileged node user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
# openssl makes development certificates when the configuration asks for them.
RUN apt-get update && apt-get install -y --no-install-recommends openssl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json gateway.example.yaml ./
COPY policies ./policies
COPY certs/make-dev-certs.sh certs/README.md ./certs/
RUN mkdir -p /app/data /etc/labelgate && chown -R node:node /app/data /app/certs
USER node
EXPOSE 8443
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["serve", "--config", "/etc/labelgate/gateway.yaml"]
