# sandbox image: a fully static `sandbox` binary on a minimal base.
#
#   docker build -t sandbox .
#
# The sandbox installs a seccomp filter with SECCOMP_RET_USER_NOTIF in the
# program it starts, which needs seccomp(2) inside the container: Docker's
# default seccomp profile allows it.

ARG GO_VERSION=1.26.8

# ---- builder: Go on Debian bookworm, static link against libseccomp.a ----
FROM golang:${GO_VERSION}-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends libseccomp-dev pkg-config gcc libc6-dev make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
# go.mod replaces go-md2man with this local stub (see its package comment).
COPY third_party/md2man ./third_party/md2man
RUN go mod download
COPY . .
# Exactly `make static`:
#   CGO_ENABLED=1 go build -trimpath -ldflags '-s -w -linkmode external -extldflags "-static"' \
#     -tags netgo,osusergo -o bin/sandbox-static ./cmd/sandbox
# and `make check-static` fails the build unless ldd says "not a dynamic executable".
RUN make check-static

# ---- runtime ----
# distroless/static-debian12:nonroot: the binary is fully static, so it needs
# no libc, no shell and no package manager; this base adds only what a static
# binary may still want (CA certificates, tzdata, /etc/passwd with the
# "nonroot" user, uid 65532) and runs as that user by default. scratch would
# lack the passwd entry and certificates; busybox would add a shell that the
# sandbox does not need.
FROM gcr.io/distroless/static-debian12:nonroot
# Set these to the project's real repository and license at build time:
#   docker build --build-arg IMAGE_SOURCE=https://... --build-arg IMAGE_LICENSES=... .
ARG IMAGE_SOURCE=https://example.invalid/sandbox
ARG IMAGE_LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="sandbox" \
      org.opencontainers.image.description="Syscall-interception sandbox: runs a program under a seccomp filter that traps connect(2) (SECCOMP_RET_USER_NOTIF) and answers each call from a supervisor." \
      org.opencontainers.image.source="${IMAGE_SOURCE}" \
      org.opencontainers.image.licenses="${IMAGE_LICENSES}"
COPY --from=builder /src/bin/sandbox-static /usr/local/bin/sandbox
# Numeric, so runAsNonRoot checks can verify it: 65532 is distroless's nonroot.
USER 65532:65532
ENTRYPOINT ["sandbox", "run", "--"]
# No HEALTHCHECK: the sandbox is a transparent wrapper. It is healthy
# exactly as long as the program it runs (it exits with the program's
# status), so health is the application's to define, in its own image:
#   HEALTHCHECK CMD ["/usr/local/bin/myapp", "healthcheck"]
# No CMD: the program to run is the container's arguments, e.g.
#   docker run --rm sandbox /path/to/program args...
# This image holds no other program; put it in front of an application as below.

# ---- putting the sandbox in front of an application image ----
# In the application's Dockerfile, copy the static binary out of this image
# and make it the entrypoint, with the application's command after "--":
#
#   FROM sandbox:latest AS sandbox
#
#   FROM myapp:latest
#   COPY --from=sandbox /usr/local/bin/sandbox /usr/local/bin/sandbox
#   USER app
#   ENTRYPOINT ["/usr/local/bin/sandbox", "run", "--"]
#   CMD ["/usr/local/bin/myapp", "--listen", "127.0.0.1:8080"]
#
# The binary is static, so it works on any base (Debian, Alpine/musl,
# distroless, scratch) and needs no libseccomp in the application image.
