# The BrightRun server image: one static Go binary with the web assets
# embedded, on a distroless base, as a non-root user.
#
#   docker build -t brightrun:0.1.0 .
#   docker run -p 8080:8080 -e BRIGHTRUN_DATABASE_URL=postgres://… brightrun:0.1.0
#
# The image starts no local trainer agent (BRIGHTRUN_LOCAL_AGENT=false):
# agents run elsewhere (trainer/Dockerfile), or launchers start them
# (BRIGHTRUN_LAUNCHERS, docs/launchers.md).
FROM node:22-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM golang:1.26-bookworm AS go
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=web /src/internal/ui/static/dist/ ./internal/ui/static/dist/
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/brightrun ./cmd/brightrun && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=go /out/brightrun /usr/local/bin/brightrun
COPY --from=go --chown=65532:65532 /out/data /data
ENV BRIGHTRUN_ADDR=0.0.0.0:8080 \
    BRIGHTRUN_DATA_DIR=/data \
    BRIGHTRUN_LOCAL_AGENT=false
VOLUME /data
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/brightrun"]
CMD ["serve"]
