package conformance

import (
	"os"
	"path/filepath"
	"testing"

	"sandbox/tests/internal/nettest"
)

// TestCredsUnprivilegedSupervisor runs probes/creds.c with the whole
// sandbox as nobody (the supervisor has no CAP_SYS_ADMIN and cannot name
// the caller in SCM_CREDENTIALS). Which messages carry credentials, and
// their uid and gid, must be as native; only the pid may differ (the
// documented divergence), so the probe prints none (CREDS_NO_PID).
// TestProbesUnderSandbox covers a root supervisor.
func TestCredsUnprivilegedSupervisor(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	bin := nettest.CompileC(t, filepath.Join("probes", "creds.c"), false, "-Werror")
	for _, p := range []string{sb, bin} {
		for d := filepath.Dir(p); d != "/" && d != "/tmp"; d = filepath.Dir(d) {
			os.Chmod(d, 0o755) // test binaries live in private directories
		}
	}
	nobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", "env", "CREDS_NO_PID=1"}
	n := newNetwork(t)
	native := run(t, n, append(nobody, bin)...)
	if native.ExitCode != 0 || len(native.Stdout) == 0 {
		t.Fatalf("native run failed: %v", native)
	}
	sandboxed := run(t, n, append(nobody, sb, "run", "--allow-all", "--", bin)...)
	compare(t, "native", "sandbox", native, sandboxed)
}
