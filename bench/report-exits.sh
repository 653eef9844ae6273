#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# How fast `vmscope report exits` reads a trace, next to its peers on the same events:
# `trace-cmd report` (the same .dat file) and `perf kvm stat report` (the same events
# converted to perf.data by tests/tools/dat2perf, when it is built and perf is installed).
# The trace (about EVENTS events, VMX exits of 2 VMs x 2 vCPUs with MMIO, port and MSR
# exits, preemptions, a few lost windows) comes from tests/tools/gentrace, as version 6
# uncompressed and version 7 zstd. The machine's ceiling for each file is how fast it can
# merely be read (page cache) and, for v7, decompressed.
#
# Prints, per tool and file: seconds (best of RUNS), events/s, peak RSS, CPU time (user +
# system, and the cores it kept busy: a run that keeps every core busy is bound by the
# machine, not by waiting), and the ratios.
#
# Usage: bench/report-exits.sh [BUILD_DIR] [EVENTS] [RUNS]   (RUNS: vmscope's, best of;
# the peers run once: they take minutes)
# Environment: BENCH_DIR keeps the traces there (BENCH_REUSE=1 reuses them); BENCH_SLOW=1
# also times trace-cmd report on the v7 file (minutes).
set -u
build=${1:-build}
events=${2:-20000000}
runs=${3:-3}
vmscope=$build/cli/vmscope
gentrace=$build/tests/tools/gentrace
dat2perf=$build/tests/tools/dat2perf
work=${BENCH_DIR:-$(mktemp -d /var/tmp/vmscope-bench.XXXXXX)}
[ -n "${BENCH_DIR:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work" || exit 1

for x in "$vmscope" "$gentrace"; do
	[ -x "$x" ] || { echo "no $x: build first (meson setup $build && ninja -C $build)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

echo "== generating ~$events events into $work"
[ -s "$work/v6.dat" ] && [ -s "$work/v7.dat" ] && [ -n "${BENCH_REUSE:-}" ] || {
"$gentrace" -o "$work/v6.dat" --events-total "$events" --vms 2 --vcpus 2 --cpus 2 --lost 4 \
	--no-percentiles --quiet || exit 1
"$gentrace" -o "$work/v7.dat" --events-total "$events" --vms 2 --vcpus 2 --cpus 2 --lost 4 \
	--no-percentiles --quiet --dat-version 7 --compression zstd || exit 1
}
n=$("$vmscope" report exits -q -f json "$work/v6.dat" | python3 -c \
	'import json,sys; print(json.load(sys.stdin)["trace"]["records"])')
echo "   $n records; v6 $(du -h "$work/v6.dat" | cut -f1), v7 zstd $(du -h "$work/v7.dat" | cut -f1)"

# best of $runs: prints "seconds max_rss_kb cpu_seconds" (the command's own output is
# thrown away; CPU time is user + system of the best run)
measure() {
	local best="" rss=0 cpu=0 s m u k n=${MEASURE_RUNS:-$runs}
	for ((i = 0; i < n; i++)); do
		/usr/bin/time -o "$work/time" -f "%e %M %U %S" "$@" >/dev/null 2>&1
		# a command that fails adds a line "Command exited with ..." before ours
		read -r s m u k < <(tail -n 1 "$work/time")
		if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $s < $best else 1)"; then
			best=$s
			cpu=$(python3 -c "print($u + $k)")
		fi
		[ "$m" -gt "$rss" ] && rss=$m
	done
	echo "$best $rss $cpu"
}

row() { # name seconds rss_kb cpu_seconds: CPU time and the cores it kept busy on average
	python3 -c "
n, s, r, c = $n, max($2, 1e-3), $3, $4
print('%-34s %8.2f s %10.2f M events/s %9.1f MiB %7.2f s CPU (%.1f cores)'
      % ('$1', s, n / s / 1e6, r / 1024, c, c / s))"
}

declare -A secs
report() { # key label command...
	local key=$1 label=$2; shift 2
	read -r s m c < <(measure "$@")
	secs[$key]=$s
	row "$label" "$s" "$m" "$c"
}

echo
echo "== ceiling (page cache read; zstd decompression of the v7 file)"
cat "$work/v6.dat" "$work/v7.dat" >/dev/null
report cat6 "read v6 (cat)" cat "$work/v6.dat"
zstd -q -3 -c "$work/v6.dat" >"$work/v6.zst"
report zstd7 "zstd -d of the same bytes" zstd -qdc "$work/v6.zst"
echo
echo "== vmscope report exits"
report vms6 "vmscope report exits (v6)" "$vmscope" report exits -q "$work/v6.dat"
report vms7 "vmscope report exits (v7 zstd)" "$vmscope" report exits -q "$work/v7.dat"
if command -v trace-cmd >/dev/null; then
	echo
	echo "== trace-cmd report"
	MEASURE_RUNS=1 report tc6 "trace-cmd report (v6)" trace-cmd report -i "$work/v6.dat"
	# about 6 minutes for 20 M events here: only with BENCH_SLOW=1
	[ -n "${BENCH_SLOW:-}" ] &&
		MEASURE_RUNS=1 report tc7 "trace-cmd report (v7 zstd)" trace-cmd report -i "$work/v7.dat"
fi
if command -v perf >/dev/null && [ -x "$dat2perf" ]; then
	echo
	echo "== perf kvm stat report (the same events as perf.data)"
	"$dat2perf" "$work/v6.dat" "$work/perf.data" >/dev/null 2>&1 &&
		MEASURE_RUNS=1 report perf "perf kvm stat report" \
			perf kvm -i "$work/perf.data" stat report --event=vmexit
fi
echo
echo "== ratios (time of the peer / time of vmscope)"
ratio() { [ -n "${secs[$1]:-}" ] && [ -n "${secs[$2]:-}" ] &&
	python3 -c "print('%-40s %8.1fx' % ('$3', ${secs[$1]} / max(${secs[$2]}, 1e-3)))"; }
ratio tc6 vms6 "trace-cmd report / vmscope (v6)"
ratio tc7 vms7 "trace-cmd report / vmscope (v7 zstd)"
ratio perf vms6 "perf kvm stat report / vmscope (v6)"
ratio vms6 cat6 "vmscope (v6) / reading the file"
