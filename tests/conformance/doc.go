// Package conformance is the differential connect(2) conformance suite.
//
// Each probe (probes/*.c, and goprobe for Go's net package) prints one
// deterministic line per case, such as "inet.tcp_refused: ret=-1
// errno=ECONNREFUSED". TestProbesUnderSandbox runs every probe natively and
// then under `sandbox run --allow-all`, in the same fresh network namespace
// (tests/internal/nettest), and reports every case whose line differs.
// TestProbesDeterministic runs every probe natively in two fresh namespaces:
// a probe whose output varies cannot be an oracle.
//
// The tests need root (they skip otherwise), gcc, iproute2, iptables and
// python3:
//
//	go test ./tests/conformance/ -v
//	go test ./tests/conformance/ -run 'TestProbesUnderSandbox/states$' -v
//
// SANDBOX_BIN uses a prebuilt sandbox instead of building ./cmd/sandbox;
// SANDBOX_RUN_FLAGS replaces the flags given to `sandbox run`.
package conformance
