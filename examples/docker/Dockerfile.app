# Dockerfile.app: an application image with the sandbox as its entrypoint.
# See README.md, "Use as a container entrypoint".
#
#   docker build -t sandbox .                                  # the sandbox image (repository root)
#   docker build -t myapp-sandboxed -f examples/docker/Dockerfile.app \
#     --build-arg APP_IMAGE=myapp:1.0 .
#   docker run --rm --security-opt seccomp=examples/docker/seccomp-sandbox.json \
#     myapp-sandboxed /usr/local/bin/myapp --listen :8080
#
# Without the seccomp option (or --cap-add SYS_PTRACE), every connect the
# program makes fails with EPERM: Docker's default profile lacks pidfd_getfd.
ARG SANDBOX_IMAGE=sandbox:latest
ARG APP_IMAGE=myapp:latest

FROM ${SANDBOX_IMAGE} AS sandbox

FROM ${APP_IMAGE}
# The binary is static: any base will do (glibc, musl, distroless, scratch).
COPY --from=sandbox /usr/local/bin/sandbox /usr/local/bin/sandbox
# The sandbox and the program run as the same user, which needs no
# capability. (A program that switches users itself needs --cap-add
# SYS_PTRACE instead of the custom profile.)
USER 65532:65532
ENV SANDBOX_LOG_FORMAT=json \
    SANDBOX_GRACE=8s
ENTRYPOINT ["sandbox", "run", "--"]
# The program and its arguments; `docker run IMAGE CMD...` replaces them.
CMD ["/usr/local/bin/myapp"]
