#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# What the vCPU state model costs: `vmscope report vcpu,cpu,sched,steal` (the model and
# its four reports, one pass) against `vmscope report exits` (the exit analysis alone) on
# the same generated trace of about EVENTS events (tests/tools/gentrace: 2 VMs x 2 vCPUs
# on 2 CPUs, VMX, with preemptions, wakeups and migrations). Issue 4's goal: at most 1.5x.
# The two commands run in turn, RUNS times each (pairs resist the host's drift), and the
# script prints each one's median and best wall time, peak RSS, and the ratio of medians.
#
# Usage: bench/report-states.sh [BUILD_DIR] [EVENTS] [RUNS]
# Environment: BENCH_DIR keeps the trace there (BENCH_REUSE=1 reuses it).
set -u
build=${1:-build}
events=${2:-20000000}
runs=${3:-7}
vmscope=$build/cli/vmscope
gentrace=$build/tests/tools/gentrace
work=${BENCH_DIR:-$(mktemp -d /var/tmp/vmscope-bench.XXXXXX)}
[ -n "${BENCH_DIR:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work" || exit 1
for x in "$vmscope" "$gentrace"; do
	[ -x "$x" ] || { echo "no $x: build first (meson setup $build && ninja -C $build)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

dat=$work/v6.dat
if ! [ -s "$dat" ] || [ -z "${BENCH_REUSE:-}" ]; then
	echo "== generating ~$events events into $dat"
	"$gentrace" -o "$dat" --events-total "$events" --vms 2 --vcpus 2 --cpus 2 --lost 4 \
		--no-percentiles --quiet || exit 1
fi
cat "$dat" >/dev/null # into the page cache

declare -a ta tb
ma=0 mb=0
for ((i = 0; i < runs; i++)); do
	for which in a b; do
		if [ $which = a ]; then
			cmd=("$vmscope" report exits -q "$dat")
		else
			cmd=("$vmscope" report vcpu,cpu,sched,steal -q "$dat")
		fi
		/usr/bin/time -o "$work/time" -f "%e %M" "${cmd[@]}" >/dev/null 2>&1
		read -r s m < <(tail -n 1 "$work/time")
		if [ $which = a ]; then
			ta+=("$s")
			[ "$m" -gt "$ma" ] && ma=$m
		else
			tb+=("$s")
			[ "$m" -gt "$mb" ] && mb=$m
		fi
	done
done
n=$("$vmscope" report exits -q -f json "$dat" | python3 -c \
	'import json,sys; print(json.load(sys.stdin)["trace"]["records"])')
python3 - "$n" "$ma" "$mb" "${ta[*]}" "${tb[*]}" <<'EOF'
import statistics, sys
n, ma, mb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ta = [float(x) for x in sys.argv[4].split()]
tb = [float(x) for x in sys.argv[5].split()]
for name, t, m in (("report exits (exit analysis alone)", ta, ma),
                   ("report vcpu,cpu,sched,steal (state model)", tb, mb)):
    med = statistics.median(t)
    print("%-44s median %6.2f s  best %6.2f s  %6.1f M events/s  %6.1f MiB"
          % (name, med, min(t), n / med / 1e6, m / 1024))
r = statistics.median(tb) / statistics.median(ta)
print("state model / exit analysis: %.2fx (goal: at most 1.5x) over %d runs each, %d records"
      % (r, len(ta), n))
EOF
