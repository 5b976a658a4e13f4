# MisyBot Tenancy: one image holding both binaries.
#   /app/starter  `serve` (default: the Echo HTTP API) or `migrate` (apply embedded migrations, exit)
#   /app/worker   the Temporal worker (docker-compose.yml overrides the entrypoint for it)
#
# Build:  docker build -t misybot/tenancy:local .
# Both binaries are static (CGO_ENABLED=0) and the SQL migrations are embedded (go:embed), so the
# runtime image needs no shell, libc or files besides the two binaries.

# ---- build ------------------------------------------------------------------------------------
FROM golang:1.26-bookworm AS build

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

# Then the source. .dockerignore keeps local state, binaries and secrets out of the context.
COPY . .

ENV CGO_ENABLED=0
RUN mkdir -p /out/exports && go build -trimpath -ldflags="-s -w" -o /out/starter ./starter \
 && go build -trimpath -ldflags="-s -w" -o /out/worker ./worker

# ---- runtime ----------------------------------------------------------------------------------
# distroless/static: CA certificates and tzdata, no shell, runs as uid/gid 65532 ("nonroot").
FROM gcr.io/distroless/static-debian12:nonroot

LABEL org.opencontainers.image.title="misybot-tenancy" \
      org.opencontainers.image.description="MisyBot Tenancy control plane: API (starter) and Temporal worker"

WORKDIR /app
COPY --from=build /out/starter /out/worker /app/
# Offboarding archives go here (a volume in docker-compose); owned by the nonroot user so the
# worker can write it, since distroless has no shell to fix permissions later.
COPY --from=build --chown=65532:65532 /out/exports /data/exports

USER nonroot:nonroot
EXPOSE 8080

ENTRYPOINT ["/app/starter"]
CMD ["serve"]
