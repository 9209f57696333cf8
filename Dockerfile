# syntax=docker/dockerfile:1

# Build a static binary.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/callbus ./cmd/callbus \
 && mkdir -p /out/data /out/media

# Run it as the distroless nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/callbus /usr/local/bin/callbus
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/media /media

# Listening beyond loopback requires CALLBUS_API_KEYS: without it callbus
# refuses to start. Pass it at run time (docker run -e CALLBUS_API_KEYS=...),
# never bake it into the image.
ENV CALLBUS_HTTP_ADDR=0.0.0.0:8080 \
    CALLBUS_SIP_ADDR=0.0.0.0:5060 \
    CALLBUS_DATA_DIR=/data \
    CALLBUS_MEDIA_DIR=/media \
    CALLBUS_LOG_FORMAT=json

USER nonroot:nonroot
# HTTP, then SIP. RTP will use the UDP range of CALLBUS_RTP_PORTS
# (10000-20000): publishing that many ports through Docker's proxy is slow,
# so run with --network host once calls carry media.
EXPOSE 8080 5060/udp 5060/tcp
VOLUME /data
ENTRYPOINT ["/usr/local/bin/callbus"]
