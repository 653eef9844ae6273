#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# What recording costs the guest: the built-in test VM runs a fully busy phase with MMIO
# exits at a rate it can sustain (every exit costs it time: the slower the exits, the less
# it computes), and counts the units of computation it got done (truth "work"). The same
# load runs with nothing recording it, with `vmscope record` and with `trace-cmd record`
# (same events, same kernel filter by the VM's threads), alternately, ROUNDS times; the
# script prints the work per second of each and the slowdowns. The rate must stay below
# saturation (the truth's missed exits are printed: they must be about 0), or slower exits
# would leave more time for computation instead of less.
#
# Usage: bench/record-overhead.sh [BUILD_DIR] [ROUNDS] [SECONDS] [MMIO_RATE]
# Needs root, /dev/kvm, tracefs; trace-cmd is optional.
set -u
build=${1:-build}
rounds=${2:-3}
secs=${3:-8}
rate=${4:-10000}
vmscope=$build/cli/vmscope
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -x "$vmscope" ] || { echo "no $vmscope: build first" >&2; exit 1; }
[ -w /dev/kvm ] || { echo "needs /dev/kvm" >&2; exit 1; }

# One run: $1 = none|vmscope|trace-cmd; prints the guest's work per second.
one() {
	local how=$1 truth=$tmp/t.json pid rec=
	"$vmscope" testvm --daemon --pidfile "$tmp/pid" --truth "$truth" --vcpus 1 \
		--phase 0:1s --phase "100:${secs}s" --mmio "$rate" --name benchvm || return 1
	pid=$(cat "$tmp/pid")
	case $how in
	vmscope)
		"$vmscope" record -p "$pid" -o "$tmp/v.dat" -q &
		rec=$!
		;;
	trace-cmd)
		local f="" t args=()
		for t in $(ls /proc/"$pid"/task); do f="$f${f:+ || }common_pid == $t"; done
		for e in kvm_entry kvm_exit kvm_mmio kvm_pio kvm_msr kvm_userspace_exit \
			kvm_vcpu_wakeup kvm_hypercall kvm_inj_virq kvm_set_irq; do
			args+=(-e "kvm:$e" -f "$f")
		done
		# -d and --no-filter: this kind of host refuses the function tracer's files.
		trace-cmd record -q -d --no-filter -B vmsbench -b 16384 "${args[@]}" \
			-e sched:sched_switch -e sched:sched_wakeup -e sched:sched_migrate_task \
			-o "$tmp/t.dat" >/dev/null 2>&1 &
		rec=$!
		;;
	esac
	while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
	if [ -n "$rec" ]; then
		kill -INT "$rec" 2>/dev/null
		wait "$rec" 2>/dev/null
		rmdir /sys/kernel/tracing/instances/vmsbench 2>/dev/null
	fi
	python3 -c "
import json, sys
t = json.load(open('$truth'))
ph = [p for v in t['vcpus'] for p in v['phases'] if p['duty'] == 100][0]
print('%.0f %d %d' % (ph['work'] / (ph['busy_ns'] / 1e9), ph['exits']['mmio_load'], ph['exits']['mmio_missed']))"
}

have_tc=false
command -v trace-cmd >/dev/null && have_tc=true
declare -A sum
for how in none vmscope trace-cmd; do sum[$how]=0; done
for ((r = 1; r <= rounds; r++)); do
	for how in none vmscope trace-cmd; do
		[ "$how" = trace-cmd ] && ! $have_tc && continue
		read -r w made missed < <(one "$how") || { echo "run failed ($how)" >&2; exit 1; }
		sum[$how]=$((${sum[$how]} + w))
		echo "round $r: $how: $w work units/s ($made MMIO exits made, $missed missed)"
	done
done
echo
base=$((${sum[none]} / rounds))
for how in vmscope trace-cmd; do
	[ "$how" = trace-cmd ] && ! $have_tc && { echo "trace-cmd: not installed"; continue; }
	avg=$((${sum[$how]} / rounds))
	python3 -c "print('%-9s %d work units/s, slowdown %.1f %% against no tracing' % ('$how', $avg, 100.0 * (1 - $avg / $base)))"
done
echo "none      $base work units/s (1 vCPU, 100 % busy, $rate MMIO exits/s asked)"
