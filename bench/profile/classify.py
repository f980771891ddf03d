#!/usr/bin/env python3
"""classify.py: split a `perf script -F tid,ip,sym` dump of the supervisor
into where its CPU time goes, by the first matching frame of each sample's
stack (innermost first). Prints shares; with --per-call CPU_US, also the
microseconds per call (CPU_US = task-clock / calls, from perf stat).

usage: perf script -i perf.data -F tid,ip,sym | classify.py [--per-call US]
"""
import re, sys
from collections import Counter

# (category, regex on a frame's symbol). Order matters: the first category
# whose pattern matches any frame of the stack wins, so specific entries
# (the hot path's syscalls) come before broad ones (the runtime).
RULES = [
    ("log: logrus formatting and write (logger goroutine)", r"logrus\.|auditLog\)\.write$|auditLog\)\.run$"),
    ("log: record on the hot path (auditLog.record/send)", r"auditLog\)\.(record|send)$"),
    ("GC (mark, sweep, assist, write barriers)", r"gcBgMarkWorker|gcAssist|gcDrain|bgsweep|bgscavenge|gcWriteBarrier|wbBufFlush|markroot|gcStart"),
    ("decision (netstack.Decide, self oracle)", r"\.Decide$|\(\*Supervisor\)\.decide$|tree\)\."),
    ("notif RECV ioctl (incl. the switch to/from the tracee)", r"Listener\)\.Receive$|seccomp_notify_recv"),
    ("notif SEND ioctl", r"Listener\)\.Respond$|seccomp_notify_send"),
    ("notif ID_VALID ioctl", r"Listener\)\.Valid$|seccomp_notify_id_valid"),
    ("pidfd_getfd + F_SETFD (CloseOnExec)", r"sentry\.pidfdGetfd$|sys_pidfd_getfd"),
    ("kcmp(KCMP_FILES) x2 (non-leader threads)", r"sameFiles|sys_kcmp"),
    ("tid->tgid, pidfd cache (locks, maps)", r"tracees\)\.(tgidOf|procPidfd|getfdShared|getfd)$"),
    ("process_vm_readv", r"rawAccessMem|tracees\)\.access$|sys_process_vm_readv|sys_process_vm_writev"),
    ("getsockopt SO_COOKIE (connected marks)", r"socketCookie|connectedMarks"),
    ("getsockopt TCP_INFO (settle)", r"tcpProgress"),
    ("getsockopt SO_DOMAIN/SO_TYPE", r"rawGetsockoptInt|sys_getsockopt"),
    ("fcntl F_GETFL/F_SETFL x2", r"rawFcntl|sys_fcntl"),
    ("connect(2) on the duplicate (kernel TCP/UDP work)", r"rawConnect|connectOnce|sys_connect"),
    ("sendmsg(2) on the duplicate", r"rawSendmsg|sendPiece|sys_sendmsg|sys_sendto|sys_sendmmsg"),
    ("close(2) of the duplicate", r"rawClose|release$|sys_close"),
    ("Unix path in the caller's view (/proc/TID/status, root, openat2)", r"openUnixTarget|callerStatus|callerView|asCaller"),
    ("decode, dispatch, call bookkeeping", r"decodeRequest|serveOne|handleConnect|identifySocket|takeFD|handleSend|readMsghdr|readIovecs|sendMessage|finish$"),
    ("malloc (call struct, records)", r"runtime\.mallocgc|runtime\.newobject"),
    ("time.Now / latency", r"time\.Now|time\.Since|nanotime"),
    ("Go scheduler, sysmon, preemption signals, futex wakeups", r"runtime\.(schedule|findRunnable|park_m|mcall|sysmon|notesleep|notewakeup|futex|stopm|startm|wakep|preemptone|signalM|sigtramp|sighandler|usleep|goschedImpl|entersyscall|exitsyscall|reentersyscall|exitsyscallfast|netpoll|mstart|gopark|goready|ready|runqsteal|stealWork)"),
    ("epoll waiter", r"waiter\)"),
    ("floor: /proc status read, pidfd_open (first call per tid)", r"sys_openat|sys_read$|sys_pidfd_open"),
    ("notif ioctls, not split (the floor: RECV/SEND/ID_VALID inlined)", r"seccomp_notify_ioctl|__GI___ioctl"),
    ("floor user space", r"^(main|do_connect|do_sendto|do_sendmsg|do_sendmmsg|copymsg|getfd|pidfd_of|readmem|denied)$"),
    ("syscall entry/exit, other kernel", r"entry_SYSCALL|syscall_exit|do_syscall_64"),
]
RULES = [(c, re.compile(p)) for c, p in RULES]

def main():
    per_call = None
    if len(sys.argv) == 3 and sys.argv[1] == "--per-call":
        per_call = float(sys.argv[2])
    counts, total = Counter(), 0
    stack = []
    def flush():
        nonlocal total
        if not stack:
            return
        total += 1
        for cat, rx in RULES:
            if any(rx.search(f) for f in stack):
                counts[cat] += 1
                break
        else:
            leaf = stack[0]
            counts["other: " + leaf[:60]] += 1
    for line in sys.stdin:
        if not line.strip():
            flush(); stack = []
            continue
        if line.startswith("\t"):
            parts = line.split(None, 1)
            stack.append(parts[1].strip() if len(parts) > 1 else "")
        else:
            flush(); stack = []
    flush()
    for cat, n in counts.most_common():
        share = n / total
        extra = f"  {share * per_call:6.2f} µs/call" if per_call else ""
        print(f"{share * 100:5.1f}%  {cat}{extra}")
    print(f"{total} samples")

if __name__ == "__main__":
    main()
