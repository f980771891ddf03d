package verdicts

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// Netlink messages to the kernel itself (nl_pid 0, no groups) name no peer:
// under the default policy, sendto and sendmsg to it go through, as glibc's
// getaddrinfo needs, while a message to another process is decided (denied
// here: it is not the tree's own).
func TestNetlinkToTheKernelIsNoPeer(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	sb := nettest.BuildSandbox(t)
	const script = `
import socket, struct
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
msg = struct.pack('=LHHLL', 32, 18, 0x301, 1, 0) + struct.pack('=BxHiII', 0, 0, 0, 0, 0)
s.sendto(msg, (0, 0)); print('sendto_kernel:', len(s.recv(65536)) > 0)
s.sendmsg([msg], [], 0, (0, 0)); print('sendmsg_kernel:', len(s.recv(65536)) > 0)
for name, send in (('sendto_process', lambda: s.sendto(msg, (4242, 0))),
                   ('sendmsg_process', lambda: s.sendmsg([msg], [], 0, (4242, 0)))):
    try:
        send(); print(name + ': sent')
    except OSError as e:
        print(name + ':', e.strerror)
`
	r := nettest.Run(time.Minute, sb, "run", "--", py, "-c", script)
	want := "sendto_kernel: True\nsendmsg_kernel: True\nsendto_process: Permission denied\nsendmsg_process: Permission denied\n"
	if r.ExitCode != 0 || r.Stdout != want {
		t.Fatalf("got %v\nwant stdout:\n%s", r, want)
	}
	if strings.Count(r.Stderr, "denied") != 2 {
		t.Errorf("want exactly the two messages to a process logged as denied:\n%s", r.Stderr)
	}
}
