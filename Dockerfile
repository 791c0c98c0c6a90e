# syntax=docker/dockerfile:1
# strata's image for those who build with a container engine:
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) -t strata .
# `make image` builds the same layout without one (hack/image) and is the
# tested, reproducible path; this file is not built by the project's CI.
# Pin the two base images by digest for reproducible builds of your own.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG TARGETOS=linux
ARG TARGETARCH=amd64
# The flags of internal/image.BuildBinary: static, no paths, no VCS stamp,
# no build ID, stripped, version and commit stamped.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOAMD64=v1 GOARM64=v8.0 \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= -X github.com/strata-gitops/strata/internal/cli.version=${VERSION} -X github.com/strata-gitops/strata/internal/cli.commit=${COMMIT}" \
      -o /out/strata ./cmd/strata

# distroless static: CA certificates, /etc/passwd with nonroot (65532), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="strata" \
      org.opencontainers.image.source="https://github.com/strata-gitops/strata" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/strata /strata
USER 65532:65532
ENTRYPOINT ["/strata"]
