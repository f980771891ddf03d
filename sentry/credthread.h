// Credential threads (credthread.c, Go side in caller.go): plain pthreads,
// unknown to the Go runtime, each switched for good to one caller's
// credentials, that make single system calls for the supervisor.
#include <stdint.h>

// The credentials a thread takes (sb_cred_start), as /proc/TID/status
// shows them: real, effective, saved and fs ids, and the effective
// capabilities. (The supplementary groups are passed apart: Go may pass C
// no memory that holds a Go pointer.)
struct sb_creds {
	uint32_t uid[4], gid[4];
	uint64_t cap_eff;
};

struct sb_credthread;

// sb_cred_start starts a thread with creds and the ngroups supplementary
// groups; NULL with *err an errno (and *step the call that failed) if it
// cannot be made or cannot take them (it has exited then). It returns once
// the thread has taken them: creds and groups are not kept.
struct sb_credthread *sb_cred_start(const struct sb_creds *creds, const uint32_t *groups, uint32_t ngroups,
				    int *err, const char **step);

// sb_cred_call makes system call nr on the thread and waits for it: its
// return value, or -errno.
long sb_cred_call(struct sb_credthread *t, long nr, long a0, long a1, long a2, long a3, long a4, long a5);

// sb_cred_stop ends an idle thread and waits for it; t is freed.
void sb_cred_stop(struct sb_credthread *t);
