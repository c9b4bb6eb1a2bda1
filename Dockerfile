# Gatehouse as a container: a static binary on a distroless base, running as
# a non-root user, with the SQLite data in a volume. Build and run:
#
#   docker build -t gatehouse --build-arg VERSION=$(git describe --tags --always) .
#   docker run -d --name gatehouse -p 127.0.0.1:8080:8080 -v gatehouse-data:/data \
#     -e GATEHOUSE_BASE_URL=https://gatehouse.example.com \
#     -e GATEHOUSE_TRUSTED_PROXIES=172.17.0.1 gatehouse
#   docker logs gatehouse          # the one-time setup link, on the first start
#   docker exec gatehouse /gatehouse users list
#
# Publish on loopback and put the TLS proxy in front; the proxy's requests
# reach the container from the bridge's gateway (172.17.0.1 on Docker's
# default bridge: `docker network inspect bridge`), which is the address to
# trust. A bind-mounted /data must be owned by uid 65532 (the image's user):
# `install -d -o 65532 -g 65532 -m 0700 /srv/gatehouse`.
# docs/deploy.md has the details; app/packaging_test.go runs this file's
# build command, environment, command and health check without Docker.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X gatehouse/app.Version=${VERSION}" -o /out/gatehouse . \
 && install -d -m 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /gatehouse
COPY --from=build --chown=65532:65532 /out/data /data
ENV GATEHOUSE_ADDR=0.0.0.0:8080 \
    GATEHOUSE_DATA=/data \
    GATEHOUSE_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/gatehouse", "healthcheck"]
ENTRYPOINT ["/gatehouse"]
CMD ["serve"]
