# ferry's container image: one static binary on distroless, no shell, no git,
# no curl. Build it with
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT="$(git rev-parse HEAD)" -t ferry .
#
# and run it as a pipeline step, e.g. `docker run --rm ferry deploy --help`.
#
# internal/pipelines reads the `go build` line below, builds ferry exactly
# that way from the files .dockerignore lets through, checks the binary is
# statically linked and runs it in an otherwise empty root; keep the build a
# single command.

FROM golang:1.26 AS build
ARG VERSION=devel
ARG COMMIT=unknown
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/ferrycd/ferry/pkg/cli.version=${VERSION} -X github.com/ferrycd/ferry/pkg/cli.commit=${COMMIT}" -o /out/ferry ./cmd/ferry

# static-debian12 carries /etc/ssl/certs/ca-certificates.crt (registries and
# git hosts over TLS), /etc/passwd with nonroot (65532) and a writable /tmp;
# ferry needs nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ferry /ferry
USER nonroot:nonroot
ENTRYPOINT ["/ferry"]
