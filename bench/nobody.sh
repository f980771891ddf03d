#!/bin/bash
# bench/nobody.sh SANDBOX... : the Unix path connect of bench/c/unix_connect.c
# made by a program running as nobody (setpriv), interleaved, 7 rounds,
# medians in ns/op: natively, under the floor, under the exact floor
# (FLOOR_EXACT=1) and under each SANDBOX binary given (`run --allow
# unix:PATH`). A run as another user is where the supervisor makes the
# path's openat2 and connect on a credential thread (docs/design.md,
# "Credential threads"); the floors look the path up with their own
# credentials, so they leave that hand-over out. Root only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 777 "$tmp" # the program, as nobody, binds its listener there
gcc -O2 -pthread -I"$here/c" "$here/c/unix_connect.c" -o "$tmp/unix_connect"
gcc -O2 -o "$tmp/floor" "$here/floor/floor.c" -lseccomp
path=$tmp/s n=3000
as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
names=(native floor floor-exact) cmds=("" "$tmp/floor" "env FLOOR_EXACT=1 $tmp/floor")
for b in "$@"; do names+=("$b"); cmds+=("$b run --log-level error --allow unix:$path --"); done
declare -A res
for round in 1 2 3 4 5 6 7; do
	for i in "${!names[@]}"; do
		v=$(${cmds[$i]} "${as[@]}" "$tmp/unix_connect" $n "$path" 2>/dev/null | grep -oE 'ns_per_op=[0-9.]+' | cut -d= -f2)
		res[$i]="${res[$i]:-} ${v:-NaN}"
	done
done
for i in "${!names[@]}"; do
	med=$(tr ' ' '\n' <<<"${res[$i]}" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	printf '%-12s %10.0f ns/op   [%s ]\n' "$(basename "${names[$i]}")" "$med" "${res[$i]}"
done
