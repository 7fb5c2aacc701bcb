# corral in a container, for docker-compose.example.yml or docker run.
#
#   docker build -t corral:local .
#   docker build -t corral:local --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
#
# The build stage compiles corral with cgo, so NVML is in (the go-nvml
# headers' deprecation warnings are silenced, as in scripts/build); the
# runtime is distroless: glibc (NVML is loaded at run time from the
# driver's libnvidia-ml.so.1, which the NVIDIA Container Toolkit mounts
# into a container given GPUs), CA certificates for ACME, no shell.
# corral runs as root in it: it drives Docker through the mounted socket.
#
# Offline (no registry, as on corral's build machines) neither base image
# can be pulled: the compose test builds this file's runtime stage on
# FROM scratch with a static binary built on the host instead.
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
ARG BUILD_DATE=
RUN CGO_ENABLED=1 CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" \
	go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.buildDate=${BUILD_DATE}" \
	-o /out/corral ./cmd/corral

FROM gcr.io/distroless/base-debian12 AS runtime
COPY --from=build /out/corral /usr/local/bin/corral
# NVML needs only the driver's utility libraries, not CUDA: corral's
# Ollama containers get their own GPUs from Docker.
ENV CORRAL_DATA_DIR=/var/lib/corral NVIDIA_DRIVER_CAPABILITIES=utility
VOLUME /var/lib/corral
EXPOSE 80 443 3000 8080 8090
# Healthy once the daemon answers on its control socket.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["/usr/local/bin/corral", "status"]
ENTRYPOINT ["/usr/local/bin/corral"]
CMD ["serve"]
