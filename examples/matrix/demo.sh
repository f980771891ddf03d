#!/usr/bin/env bash
# The matrix of the README: `sandbox matrix` on the sample client of
# tests/matrix (it retries once on a reset and gives up on a timeout)
# against a local HTTP server on 127.0.0.1:8099, with the default faults.
# Run from anywhere: bash examples/matrix/demo.sh [matrix flags...]
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin" GOFLAGS="${GOFLAGS:--buildvcs=false}"
make -s build >/dev/null
dir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/client" ./tests/matrix/testdata/client
echo ok >"$dir/index.html"
python3 -m http.server 8099 --bind 127.0.0.1 --directory "$dir" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8099))' 2>/dev/null && break; sleep 0.1; done
bin/sandbox matrix --run-timeout 10s "$@" -- "$dir/client" 127.0.0.1:8099
