# One Dockerfile for the three services; docker-compose.yml picks one with `target:`.
#   docker build --target ingester -t ecomstream/ingester:dev .
# The build context is the repository root so that go.work and every module are visible.
# Base images are pinned in .env (compose passes them as build args); the defaults here
# are the same pins for a plain `docker build`. Why each pin exists and how to refresh
# it: docs/images.md.
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:b7bb25d9f7c31d2bdd1982feb4dafcaf137703c7075dbe2febb41c24212b946f

# Only the workspace's go.work/go.mod/go.sum files, at their paths. This stage reruns on
# every source change, but its output changes only when a module file does, so the
# download layer below stays cached while the code changes (and a new module in go.work
# needs no edit here).
FROM ${GO_IMAGE} AS modfiles
WORKDIR /src
COPY . .
RUN mkdir /out \
 && find . \( -name go.work -o -name go.work.sum -o -name go.mod -o -name go.sum \) \
         -not -path './.git/*' -print0 \
    | xargs -0 cp --parents -t /out

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY --from=modfiles /out/ ./
# Test-only modules are part of no image; dropping them keeps their dependencies out.
RUN go work edit -dropuse=./tests/compose -dropuse=./tests/helm
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN go work edit -dropuse=./tests/compose -dropuse=./tests/helm
# The shared volume's directories, owned by the distroless nonroot user (65532): a named
# volume mounted at /data copies this ownership on first use, so the services can write.
RUN mkdir -p /out/data/incoming /out/data/archive /out/data/failed

# One stage per binary: a target builds only its own, and compose builds them in parallel.
FROM build AS build-generator
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/generator ./services/generator

FROM build AS build-ingester
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/ingester ./services/ingester

FROM build AS build-collector
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/collector ./services/collector

FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data

FROM runtime AS generator
COPY --from=build-generator /out/generator /usr/local/bin/generator
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/generator"]

FROM runtime AS ingester
COPY --from=build-ingester /out/ingester /usr/local/bin/ingester
EXPOSE 8082
ENTRYPOINT ["/usr/local/bin/ingester"]

FROM runtime AS collector
COPY --from=build-collector /out/collector /usr/local/bin/collector
EXPOSE 8083
ENTRYPOINT ["/usr/local/bin/collector"]
