#!/usr/bin/env bash
# Demo for `make demo`: start a loopback HTTP server on a free port, then
# fetch a page from it with curl running under the sandbox, whose log shows
# the trapped connect. Everything it starts is stopped on exit.
#
# usage: bench/demo.sh [SANDBOX_BINARY]     (default bin/sandbox)
# env:   SANDBOX_FLAGS  extra flags for `sandbox run` (before --)
#        DEMO_SERVER    python (default when python3 exists) or go
set -euo pipefail

cd "$(dirname "$0")/.."
sandbox=${1:-bin/sandbox}
read -r -a flags <<<"${SANDBOX_FLAGS:-}"

for tool in curl "$sandbox"; do
	if ! command -v "$tool" >/dev/null; then
		echo "demo: $tool not found (make deps build)" >&2
		exit 1
	fi
done

tmp=$(mktemp -d)
server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$tmp/www"
echo 'hello from the sandbox demo' >"$tmp/www/index.html"

server=${DEMO_SERVER:-}
if [[ -z $server ]]; then
	if command -v python3 >/dev/null; then server=python; else server=go; fi
fi
case $server in
python)
	# Port 0: the kernel picks a free port; http.server prints it.
	python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/server.log" 2>&1 &
	server_pid=$!
	;;
go)
	go build -o "$tmp/demoserver" ./bench/demoserver
	"$tmp/demoserver" -dir "$tmp/www" -lifetime 2m >"$tmp/server.log" 2>&1 &
	server_pid=$!
	;;
*)
	echo "demo: DEMO_SERVER must be python or go" >&2
	exit 2
	;;
esac

port=
for _ in $(seq 100); do
	port=$(sed -n 's/.*Serving HTTP on 127\.0\.0\.1 port \([0-9][0-9]*\).*/\1/p' "$tmp/server.log" | head -n1)
	[[ -n $port ]] && break
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "demo: the $server server exited:" >&2
		cat "$tmp/server.log" >&2
		exit 1
	fi
	sleep 0.1
done
if [[ -z $port ]]; then
	echo "demo: the $server server did not announce its port within 10s:" >&2
	cat "$tmp/server.log" >&2
	exit 1
fi
echo "demo: $server HTTP server on 127.0.0.1:$port (pid $server_pid)"

url="http://127.0.0.1:$port/"
# 1. The default policy: the program may talk only to itself, and this
#    server is not its own. The denial is logged with the flag to allow it.
echo "+ $sandbox run ${flags[*]:+${flags[*]} }-- curl -sS --max-time 10 -o /dev/null $url"
if "$sandbox" run "${flags[@]}" -- curl -sS --max-time 10 -o /dev/null "$url"; then
	echo "demo: expected the default policy to deny the connect" >&2
	exit 1
fi
echo "demo: denied by the default policy, as expected"
# 2. Allowed: a real connection. With -v the log (stderr) shows the allowed connect;
#    curl's status code shows the request went through.
echo "+ $sandbox run -v --allow tcp:127.0.0.1:$port ${flags[*]:+${flags[*]} }-- curl -s --max-time 10 -o /dev/null -w '%{http_code}\n' $url"
code=$("$sandbox" run -v --allow "tcp:127.0.0.1:$port" "${flags[@]}" -- curl -s --max-time 10 -o /dev/null -w '%{http_code}\n' "$url")
echo "$code"
if [[ $code != 200 ]]; then
	echo "demo: expected HTTP 200 through the sandbox, got '$code'" >&2
	exit 1
fi
echo "demo: ok"
