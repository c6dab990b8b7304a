# Static, non-root image; nothing is downloaded at run time.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/aigw ./cmd/aigw

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/aigw /usr/local/bin/aigw
COPY configs /etc/aigw
USER nonroot:nonroot
# The usage ledger (SQLite and its spill) lives under /data: mount a volume
# there to keep it, or set AIGW_LEDGER_DSN to a postgres:// URL.
WORKDIR /home/nonroot
ENV AIGW_LEDGER_DSN=sqlite:/home/nonroot/data/aigw.db
VOLUME /home/nonroot/data
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/aigw"]
CMD ["serve", "-c", "/etc/aigw/examples/quickstart.yaml", "--listen", "0.0.0.0:8080", "--admin-listen", "0.0.0.0:9090"]
