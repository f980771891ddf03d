#!/bin/bash
# profile.sh NAME SECONDS -- SUPERVISOR [ARGS...]
#
# Starts SUPERVISOR (`sandbox run ... -- PROG ...` or `floor PROG ...`; it
# is the process started, so its pid is $!), lets it warm up for a second,
# then for SECONDS counts its system calls per trapped call (perf stat on
# syscall tracepoints; pidfd_getfd, one per call, is the divisor) and
# samples where its CPU goes (perf record -g, cpu-clock: VMs often lack a
# PMU). Prints the supervisor's CPU per call, syscalls per call, and the
# breakdown by classify.py in µs per call. Data stays in /tmp/profile-NAME.*.
#
# Example (from the repository root, after go build -o /tmp/sb ./cmd/sandbox
# and gcc -O2 -pthread -o /tmp/udp_connect bench/c/udp_connect.c):
#
#   bench/profile/profile.sh udp 3 -- /tmp/sb run --allow udp:127.0.0.1 -- /tmp/udp_connect 100000
set -eu
name=$1 secs=$2
shift 3
here=$(cd "$(dirname "$0")" && pwd)
out=/tmp/profile-$name
"$@" >"$out.out" 2>/dev/null &
sp=$!
sleep 1
ev=task-clock,context-switches
for s in ioctl pidfd_getfd process_vm_readv process_vm_writev getsockopt fcntl connect sendmsg sendto sendmmsg close write futex nanosleep tgkill openat read kcmp epoll_pwait epoll_ctl; do
	ev=$ev,syscalls:sys_enter_$s
done
perf stat -x, -e "$ev" -p $sp -o "$out.csv" -- sleep "$secs" &
perf record -q -e cpu-clock -F 4999 -g -p $sp -o "$out.data" -- sleep "$secs" >/dev/null 2>&1 || true
wait
calls=$(awk -F, '/sys_enter_pidfd_getfd/{print $1}' "$out.csv")
cpu=$(awk -F, '/task-clock/{print $1}' "$out.csv")
us=$(awk -v c="$cpu" -v n="$calls" 'BEGIN{printf "%.2f", c*1000/n}')
echo "== $name: $calls calls in ${secs}s; supervisor CPU $us µs per call; $(grep BENCH "$out.out" || true)"
awk -F, -v n="$calls" '$1+0>0 && $3 ~ /sys_enter|context/ {sub("syscalls:sys_enter_","",$3); printf "%s %.2f  ", $3, $1/n} END{print ""}' "$out.csv"
perf script -i "$out.data" -F tid,ip,sym 2>/dev/null | python3 "$here/classify.py" --per-call "$us"
