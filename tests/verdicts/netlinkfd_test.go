package verdicts

import (
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sandbox/tests/internal/nettest"
)

// A descriptor or pid inside an rtnetlink request means the caller's: `ip
// link ... netns /proc/PID/ns/net` sends its own descriptor of that file
// (IFLA_NET_NS_FD, also in the veth peer's nested ifinfomsg), `netns PID`
// a pid (IFLA_NET_NS_PID), `ip netns set` a descriptor in RTM_NEWNSID
// (NETNSA_FD). The supervisor performs the sendmsg, so the kernel would
// resolve them in the supervisor's table. Native and sandboxed runs, each in
// a fresh pair of namespaces, must give the same answers and leave the
// links in the same namespaces.
func TestNetlinkDescriptorsAreTheCallers(t *testing.T) {
	sb := nettest.BuildSandbox(t)
	native := netnsScenario(t, nil)
	// The layers that would refuse this root program's network changes on
	// their own (capabilities, Landlock on the other namespaces' /proc
	// entries, user namespaces for unshare) are lifted: the test is about
	// the descriptors the supervisor passes.
	sandboxed := netnsScenario(t, []string{sb, "run", "--allow-all", "--keep-caps", "--landlock=false", "--allow-userns", "--log-level", "error", "--"})
	t.Logf("native:\n%s", native)
	// The test can fail: the moves must really happen natively.
	for _, want := range []string{"peer: vA vB vC vD", "nsid 7"} {
		if !strings.Contains(native, want) {
			t.Fatalf("native run lacks %q: the scenario proves nothing", want)
		}
	}
	if sandboxed != native {
		t.Errorf("sandboxed differs from native:\n--- native\n%s--- sandboxed\n%s", native, sandboxed)
	}
}

// netnsScenario runs the ip commands (prefixed with wrap) in a fresh
// namespace and returns what they answered and where the links are.
func netnsScenario(t *testing.T, wrap []string) string {
	t.Helper()
	n := nettest.NewNetns(t)
	sleeper := exec.Command("ip", "netns", "exec", n.Peer, "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	pid := strconv.Itoa(sleeper.Process.Pid) // ip netns exec execs sleep: the same process
	nsPath := "/proc/" + pid + "/ns/net"
	for deadline := time.Now().Add(10 * time.Second); ; {
		if r := nettest.Run(5*time.Second, "ip", "netns", "identify", pid); strings.TrimSpace(r.Stdout) == n.Peer {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sleeper never entered the peer namespace")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A namespace no link joins yet, so that it has no nsid here.
	third := n.Name + "-n"
	if r := nettest.Run(time.Minute, "ip", "netns", "add", third); r.Err != nil {
		t.Fatal(r)
	}
	t.Cleanup(func() { nettest.Run(time.Minute, "ip", "netns", "del", third) })
	var out strings.Builder
	// In a pid namespace of its own, $! is a pid the supervisor's
	// namespace knows by another number.
	const inPidns = `ip netns exec "$0" sleep 30 & sleep 0.5; exec ip link set vA netns $!`
	for _, args := range [][]string{
		{"ip", "netns", "set", third, "7"}, // RTM_NEWNSID with NETNSA_FD
		{"ip", "link", "add", "vA", "type", "veth", "peer", "name", "vB", "netns", nsPath},
		{"ip", "link", "add", "vC", "type", "veth", "peer", "name", "vD"},
		{"ip", "link", "set", "vC", "netns", pid},
		{"ip", "link", "set", "vD", "netns", nsPath},
		{"ip", "link", "set", "vA", "netns", "99999999"},      // no such process: ESRCH
		{"ip", "link", "set", "vA", "netns", "/etc/hostname"}, // not a namespace: EINVAL
		{"unshare", "--pid", "--fork", "sh", "-c", inPidns, n.Peer},
	} {
		argv := append(append([]string{"ip", "netns", "exec", n.Name}, wrap...), args...)
		r := nettest.Run(time.Minute, argv...)
		if r.TimedOut {
			t.Fatalf("%v", r)
		}
		fmt.Fprintf(&out, "%s: exit %d %s\n", strings.Join(args, " "), r.ExitCode, strings.TrimSpace(r.Stderr))
	}
	fmt.Fprintf(&out, "here: %s\npeer: %s\n", vlinks(t, n.Name), vlinks(t, n.Peer))
	ids := nettest.Run(time.Minute, "ip", "-n", n.Name, "netns", "list-id")
	fmt.Fprintf(&out, "ids: %s\n", strings.Join(strings.Fields(ids.Stdout), " "))
	s := strings.ReplaceAll(out.String(), third, "THIRD")
	return strings.ReplaceAll(strings.ReplaceAll(s, n.Peer, "PEER"), pid, "PID")
}

var linkName = regexp.MustCompile(`(?m)^\d+: (v[A-D])[@:]`)

// vlinks lists the test's links (vA..vD) in namespace ns.
func vlinks(t *testing.T, ns string) string {
	r := nettest.Run(time.Minute, "ip", "-n", ns, "-o", "link", "show")
	if r.Err != nil {
		t.Fatal(r)
	}
	var names []string
	for _, m := range linkName.FindAllStringSubmatch(r.Stdout, -1) {
		names = append(names, m[1])
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}
