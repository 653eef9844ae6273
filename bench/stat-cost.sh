#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# What `vmscope stat` costs the host at 1 Hz: VMS test VMs (1 vCPU each, 10 % busy) run
# while `vmscope stat --interval 1s` reports on all of them (procfs, schedstat, KVM
# statistics descriptors, kernel-counted trace events per vCPU, host CPUs) for SECONDS;
# its CPU time (user + system, from /usr/bin/time) is divided by the wall time. Side by
# side, a plain shell loop reads the same procfs sources (every VM thread's stat and
# schedstat, /proc/stat) once a second; kvm_stat cannot run on this host (its debugfs
# counters answer EPERM and it has no tracepoint mode without them). Issue 6's goal:
# at most 1 % of one CPU. A third run adds --exit-reasons: exits by reason per vCPU, by a
# hist trigger where the kernel has them (free), else traced and counted by vmscope (the
# VMs make 2000 exits to the VMM per busy second each, so that there is something to
# count).
#
# Usage: bench/stat-cost.sh [BUILD_DIR] [VMS] [SECONDS]
# Needs root and /dev/kvm.
set -u
build=${1:-build}
vms=${2:-10}
secs=${3:-20}
vmscope=$build/cli/vmscope
tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

[ -x "$vmscope" ] || { echo "no $vmscope: build first" >&2; exit 1; }
[ -w /dev/kvm ] || { echo "needs /dev/kvm" >&2; exit 1; }

for i in $(seq 1 "$vms"); do
	"$vmscope" testvm --daemon --pidfile "$tmp/$i.pid" --name "costvm$i" --vcpus 1 \
		--phase "10:$((secs * 3 + 10))s" --mmio 1500 --pio 500 || exit 1
	pids+=("$(cat "$tmp/$i.pid")")
done

# CPU seconds (user + system) of a command, from GNU time's -f output.
cpu_of() { awk '{ print $1 + $2 }' "$1"; }

/usr/bin/time -f "%U %S" -o "$tmp/vmscope.time" \
	"$vmscope" stat --interval 1s --count "$secs" >/dev/null 2>"$tmp/vmscope.err" ||
	{ cat "$tmp/vmscope.err"; exit 1; }

/usr/bin/time -f "%U %S" -o "$tmp/reasons.time" \
	"$vmscope" stat -x --interval 1s --count "$secs" >"$tmp/reasons.out" 2>"$tmp/reasons.err" ||
	{ cat "$tmp/reasons.err"; exit 1; }
backend=$(grep -o "counted in the kernel by a hist trigger\|traced and counted by vmscope" \
	"$tmp/reasons.out" | head -1)

cat >"$tmp/loop.sh" <<'LOOP'
n=$1; shift
for _ in $(seq 1 "$n"); do
	for p in "$@"; do
		for t in /proc/"$p"/task/*; do cat "$t/stat" "$t/schedstat"; done
	done >/dev/null 2>&1
	cat /proc/stat >/dev/null
	sleep 1
done
LOOP
/usr/bin/time -f "%U %S" -o "$tmp/loop.time" bash "$tmp/loop.sh" "$secs" "${pids[@]}"

v=$(cpu_of "$tmp/vmscope.time")
x=$(cpu_of "$tmp/reasons.time")
l=$(cpu_of "$tmp/loop.time")
awk -v v="$v" -v x="$x" -v l="$l" -v s="$secs" -v n="$vms" -v b="${backend:-no reasons seen}" 'BEGIN {
	printf "%d test VMs, %d reports at 1 Hz\n", n, s
	printf "%-34s %8.3f s CPU  %6.2f %% of one CPU\n", "vmscope stat", v, 100 * v / s
	printf "%-34s %8.3f s CPU  %6.2f %% of one CPU (%s)\n", "vmscope stat --exit-reasons", x,
		100 * x / s, b
	printf "%-34s %8.3f s CPU  %6.2f %% of one CPU\n", "shell loop (procfs only)", l, 100 * l / s
	if (l > 0) printf "ratio vmscope / shell loop: %.2f\n", v / l
}'
