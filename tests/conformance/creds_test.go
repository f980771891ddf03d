package conformance

import (
	"os"
	"path/filepath"
	"testing"

	"sandbox/tests/internal/nettest"
)

// TestCredsSupervisorCannotNameTheCaller runs probes/creds.c under a
// supervisor without CAP_SYS_ADMIN, which cannot name the caller in
// SCM_CREDENTIALS: the whole sandbox as nobody, and as root without
// CAP_SYS_ADMIN (a container's root) with the probe dropping to nobody in
// part. Which messages carry credentials, and their uid and gid, must be
// as native; only the pid may differ (the documented divergence), so the
// probe prints none (CREDS_NO_PID). TestProbesUnderSandbox covers a root
// supervisor, which names the caller.
func TestCredsSupervisorCannotNameTheCaller(t *testing.T) {
	nettest.RequireRoot(t)
	sb := nettest.BuildSandbox(t)
	bin := nettest.CompileC(t, filepath.Join("probes", "creds.c"), false, "-Werror")
	for _, p := range []string{sb, bin} {
		for d := filepath.Dir(p); d != "/" && d != "/tmp"; d = filepath.Dir(d) {
			os.Chmod(d, 0o755) // test binaries live in private directories
		}
	}
	for _, c := range []struct {
		name   string
		prefix []string
	}{
		{"unprivileged", []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"}},
		{"root-without-sys-admin", []string{"setpriv", "--bounding-set=-sys_admin", "--"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			prefix := append(c.prefix[:len(c.prefix):len(c.prefix)], "env", "CREDS_NO_PID=1")
			n := newNetwork(t)
			native := run(t, n, append(prefix, bin)...)
			if native.ExitCode != 0 || len(native.Stdout) == 0 {
				t.Fatalf("native run failed: %v", native)
			}
			sandboxed := run(t, n, append(prefix, sb, "run", "--allow-all", "--", bin)...)
			compare(t, "native", "sandbox", native, sandboxed)
		})
	}
}
