#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vmscope set-up, for a fresh Debian machine, as root:
#   ./setup.sh          install what is missing, build, and run the demo on the built-in
#                       test VM (needs /dev/kvm; no VM of yours is needed)
#   ./setup.sh test     install, build (also with AddressSanitizer + UBSan, and the trace
#                       suites with ThreadSanitizer), run every test suite; ends with
#                       "N passed, N failed, N skipped"
#   ./setup.sh build    install and build only
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-demo}
case "$mode" in demo|test|build) ;; *) echo "usage: $0 [demo|test|build]" >&2; exit 2 ;; esac

# Debian packages the build and the tests need.
PKGS=(meson ninja-build pkg-config gcc clang libc6-dev binutils python3 libcmocka-dev clang-format
	libtracecmd-dev libncurses-dev tmux libmicrohttpd-dev prometheus
	libgnutls28-dev libyaml-dev libcrypt-dev openssl
	libtraceevent-dev libtracefs-dev libzstd-dev zlib1g-dev trace-cmd linux-perf
	libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
	chromium)

install_missing() {
	local missing=() p
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "setup.sh: missing Debian packages: ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	echo "setup.sh: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
}

build() { # build DIR [meson options...]
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; exit 1; }
	fi
	ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { cat "$dir.ninja.log"; exit 1; }
}

demo() {
	local vmscope=build/cli/vmscope truth=build/demo-truth.json dat=build/demo.dat pid rec
	if [ ! -w /dev/kvm ]; then
		echo "setup.sh: /dev/kvm is missing or not writable: the demo needs a KVM host" >&2
		exit 1
	fi
	echo "== vmscope testvm: 2 vCPUs: idle 1.5 s, then 75 % and 90 % busy for 3 s each,"
	echo "   with MMIO, port-I/O and MSR exits to the VMM"
	"$vmscope" testvm --vcpus 2 --name demo-vm --phase 0:1.5s --phase 75:3s --phase 90:3s \
		--mmio 330 --pio 70 --msr 40 --stats --truth "$truth" >build/demo-testvm.txt &
	pid=$!
	sleep 0.5
	echo "== vmscope record: its kvm and sched events, in vmscope's own tracefs instance"
	"$vmscope" record -g demo-vm -o "$dat" -q &
	rec=$!
	sleep 2.5
	echo "== vmscope stat -x: the test VM seen from outside while it runs: every vCPU's CPU"
	echo "   time, KVM's counters, kernel-counted exits and exits by reason, as rates over"
	echo "   the second report (the VM makes 330 MMIO, 70 port and 40 MSR exits per busy s)"
	"$vmscope" stat -x -g demo-vm --interval 2s --count 2 | sed -n '/^$/,$p' | sed 1d
	wait "$pid"
	sleep 0.2
	kill -INT "$rec"
	wait "$rec"
	echo
	echo "== what the test VM did (its exact ground truth is in $truth)"
	sed -n '1,/^KVM binary statistics of the VM/p' build/demo-testvm.txt | sed '$d'
	echo "   (every KVM statistic of every vCPU: build/demo-testvm.txt)"
	echo
	echo "== vmscope report exits: the recording, by MMIO address and by user-space exit,"
	echo "   per vCPU; the counts equal the guest's own above"
	"$vmscope" report exits --event mmio --per-vcpu "$dat" | sed -n '4,$p'
	echo
	"$vmscope" report exits --event userspace --per-vcpu "$dat" | sed -n '4,$p'
	echo
	echo "== vmscope report vcpu,cpu: what each vCPU did all the time (its running share"
	echo "   follows the duty of each phase), and who used each host CPU"
	"$vmscope" report vcpu,cpu "$dat" | sed -n '4,$p'
	echo
	echo "== vmscope report --html: the same recording as one page of charts (states per"
	echo "   vCPU, exits over time, interrupts by sub-second offset); open it in a browser"
	"$vmscope" report --html "$dat" -o build/demo-report.html -q &&
		echo "   build/demo-report.html ($(du -k build/demo-report.html | cut -f1) KiB)"
	echo
	echo "== vmscope validate --calibrate: can the host's CPU accounting be trusted? The test"
	echo "   VM again, in cgroups of its own, 0 %, 75 %, 90 % busy: every source against the"
	echo "   guest's own count, then the checks that warn or fail"
	"$vmscope" validate --calibrate --phase-time 2s -q
}

run_suites() { # run_suites DIR: meson test, totals appended to $totals
	local dir=$1 log
	log=$(mktemp)
	# shellcheck disable=SC2086
	meson test -C "$dir" --print-errorlogs --num-processes 2 ${SUITES:-} >"$log" 2>&1 || true
	# The per-test lines (before meson's repeated "Summary of Failures"), then the reason
	# of every failed check and every skip.
	awk '/Summary of Failures/ { exit } /^ *[0-9]+\/[0-9]+ / { print }' "$log" | sed "s|^|[$dir] |"
	grep -E "^(FAIL|SKIP):" "$dir/meson-logs/testlog.txt" | sort -u | sed "s|^|[$dir] |" || true
	awk -v dir="$dir" '
		/^Ok:/ { ok = $2 } /^Expected Fail:/ { xf = $3 } /^Fail:/ { f = $2 }
		/^Unexpected Pass:/ { up = $3 } /^Skipped:/ { s = $2 } /^Timeout:/ { t = $2 }
		END { printf "%d %d %d\n", ok + xf, f + up + t, s }' "$log" >>"$totals"
	rm -f "$log"
}

install_missing
build build
case "$mode" in
build) echo "setup.sh: built build/cli/vmscope" ;;
demo) demo ;;
test)
	build build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all
	# ThreadSanitizer for the trace reader (decompression and read-ahead threads), the
	# test VM's threads and the exporter's TLS callbacks (suite tsan)
	build build-tsan -Db_sanitize=thread -Db_lundef=false
	# The libFuzzer harnesses, built with clang as fuzz/README.md says: the code must build
	# with clang too (the corpora replay in the suites above)
	CC=clang build build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
	totals=$(mktemp)
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
	export TSAN_OPTIONS=halt_on_error=1
	# The README's first command, as a user runs it: the demo on the test VM.
	if "$0" demo >build/demo.log 2>&1; then
		echo "[demo] ./setup.sh's demo OK (its output: build/demo.log)"
		echo "1 0 0" >>"$totals"
	else
		echo "[demo] ./setup.sh's demo FAIL:"
		tail -n 20 build/demo.log | sed 's|^|[demo] |'
		echo "0 1 0" >>"$totals"
	fi
	run_suites build
	run_suites build-asan
	SUITES="--suite trace --suite fuzz --suite tsan" run_suites build-tsan
	read -r p f s < <(awk '{ p += $1; f += $2; s += $3 } END { print p+0, f+0, s+0 }' "$totals")
	rm -f "$totals"
	echo "$p passed, $f failed, $s skipped"
	[ "$f" -eq 0 ]
	;;
esac
