# The same build as `make build`, in a container:
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t portcullis .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/portcullis ./cmd/portcullis

# A static binary on distroless: no shell, no package manager, non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/portcullis /portcullis
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/portcullis"]
CMD ["serve", "--config", "/etc/portcullis/config.yaml"]
