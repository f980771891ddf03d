// Shared by the C init stage (initstage.c) and its Go side (launch.go).
#include <stddef.h>
#include <linux/filter.h>

// The run's choices for the layers (LayerOptions, FilterOptions.RawSockets).
struct sb_options {
	int raw, landlock, userns, keepcaps;
	long preserve; // fds 3..3+N-1 pass through
};

// One launch: what the supervisor asks for, and what the stage did. The
// stage runs in the supervisor's memory and writes only the "out" fields.
struct sb_launch {
	// in
	const char *path;
	char *const *argv, *const *envp;
	const char *fail_at;
	struct sb_options opts;
	int foreground;
	unsigned long long sig_ignored, sig_blocked; // the caller's, see signals.go
	int nofile_ok;                            // restore the caller's RLIMIT_NOFILE
	unsigned long long nofile_cur, nofile_max; // (Go raised the soft limit)
	// The filter (behind the x32 guard's prefix) without the raw-socket
	// rows, and with them (len 0 when the run cannot keep CAP_NET_RAW).
	struct sock_fprog main, main_raw;
	// out
	int state;      // 'S' started, 'E' setup failed, 'R' exec'ed, 'X' exec failed
	int exec_errno; // for 'X'
	int listener, killable;
	// 0 until the filter is loaded; then 1 (the listener is set: the
	// supervisor must serve it before the stage's trapped execve can
	// proceed), or 2 when the launch ended without a listener.
	int ready;
	char msg[1024];     // for 'E'
	char report[2048];  // the layers' report, one "layer=NAME k=v..." line each
	size_t report_len;
};

int sandbox_launch(struct sb_launch *l);
int sandbox_wait_ready(struct sb_launch *l);
const char *sandbox_errstr(int e);
