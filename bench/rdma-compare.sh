#!/bin/sh
# rdma-compare.sh: muon over verbs next to raw RDMA, latency and throughput,
# in one boot of the Soft-RoCE guest.
#
#   bench/rdma-compare.sh [-n ITERS] [-N MSGS] [-b BUILD] [-s "SIZE..."]
#                         [-m "lat bw"] [-t VM_TIMEOUT_S]
#
# For each message size (default 32 and 4096 bytes) it runs, on rxe0 at
# 192.0.2.1:
#   latency (-m lat), ITERS round trips each (default 10000):
#     ib_write_lat -R                    perftest: RC RDMA WRITE ping-pong
#     ucx_perftest -x rc_verbs -t am_lat UCX (UCT) RC active messages
#     muon-bench pingpong --transport verbs --raw
#                                        muon's verbs transport, and the
#                                        bare WRITE_WITH_IMM ping-pong
#   throughput (-m bw), MSGS messages each (default 20000):
#     ib_write_bw -R                     perftest: RC RDMA WRITE stream
#     ucx_perftest -x rc_verbs -t am_bw  UCX (UCT) RC active messages, one way
#     muon-bench throughput --transport verbs --raw
#     muon-bench throughput --transport verbs --burst 32 --batch
#                                        muon publisher to subscriber, and
#                                        the bare WRITE_WITH_IMM stream
# (perftest and UCX as a server in the background and a client), and prints
# two tables: median one-way and round-trip latency with the ratio of each
# row to ib_write_lat and to ucx_perftest of the same size; messages/s with
# the ratio of each row to ib_write_bw and to ucx_perftest am_bw.
#
# perftest and ucx_perftest measure one-way latency as half the round trip;
# muon-bench measures round trips. The table says which column is which.
# Throughput: ib_write_bw and ucx_perftest count at the sender, muon-bench
# at the receiver (messages delivered). A latency ratio below 1 means the row
# is faster than the reference; a throughput ratio above 1 does.
# A muon-bench whose muon side fails (e.g. a library without the verbs
# transport) shows as "muon: failed: <reason>" in the table, and the bare
# baseline then runs alone (--raw-only). Exit status: 0 if every row has
# figures, 1 if any failed or a tool is missing, 2 for bad usage.
#
# -b BUILD: the build directory that holds bench/muon-bench (default
# ./build). Where it runs: on a host that has rxe0 (inside the test VM, or a
# host prepared the same way); without one it re-executes itself inside the
# VM through test/rdma/run-vm.sh -d BUILD. Needs jq (muon-bench's JSON).
# About 2 minutes in the VM with the defaults, boot included.
#
# Figures under QEMU TCG measure the emulator, not a NIC: compare rows of
# the same table, never against hardware numbers. See docs/rdma-vm.md.
set -u

iters=10000
msgs=20000
sizes="32 4096"
modes="lat bw"
vm_tmo=1200
build=./build
dev=${MUON_RDMA_DEV:-rxe0}
addr=${MUON_RDMA_ADDR:-192.0.2.1}
me=rdma-compare

usage() {
	echo "usage: $0 [-n ITERS] [-N MSGS] [-b BUILD] [-s \"SIZE...\"] [-m \"lat bw\"] [-t VM_TIMEOUT_S]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	-n) [ $# -ge 2 ] || usage; iters=$2; shift 2 ;;
	-N) [ $# -ge 2 ] || usage; msgs=$2; shift 2 ;;
	-m) [ $# -ge 2 ] || usage; modes=$2; shift 2 ;;
	-b) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
	-s) [ $# -ge 2 ] || usage; sizes=$2; shift 2 ;;
	-t) [ $# -ge 2 ] || usage; vm_tmo=$2; shift 2 ;;
	-h|--help) usage ;;
	*) usage ;;
	esac
done
case $iters in ''|*[!0-9]*|0) usage ;; esac
case $msgs in ''|*[!0-9]*|0) usage ;; esac
do_lat=0 do_bw=0
for m in $modes; do
	case $m in lat) do_lat=1 ;; bw) do_bw=1 ;; *) usage ;; esac
done
[ "$do_lat$do_bw" != 00 ] || usage
case $vm_tmo in ''|*[!0-9]*) usage ;; esac
for s in $sizes; do case $s in ''|*[!0-9]*|0) usage ;; esac; done
[ -n "$sizes" ] || usage

self=$(cd "$(dirname "$0")" && pwd -P)/$(basename "$0")
root=$(dirname "$(dirname "$self")")
if ! b_abs=$(cd "$build" 2>/dev/null && pwd -P); then
	echo "$me: error: build directory $build not found (-b BUILD; configure and build it first)" >&2
	exit 1
fi
build=$b_abs
mb=$build/bench/muon-bench
if [ ! -x "$mb" ]; then
	echo "$me: error: $mb not found: build it first (cmake --build $build)" >&2
	exit 1
fi
if ! command -v jq >/dev/null 2>&1; then
	echo "$me: error: jq not found: install the Debian package jq (scripts/setup.sh does)" >&2
	exit 1
fi

if [ ! -e "/sys/class/infiniband/$dev" ]; then
	if [ -n "${MUON_VM_GUEST:-}" ]; then
		echo "$me: error: inside the VM but there is no RDMA device $dev" >&2
		exit 1
	fi
	echo "$me: no RDMA device $dev here: running inside the Soft-RoCE VM (test/rdma/run-vm.sh)" >&2
	cd "$root" || exit 1
	exec sh "$root/test/rdma/run-vm.sh" -d "$build" -t "$vm_tmo" -- \
		sh "$self" -n "$iters" -N "$msgs" -b "$build" -s "$sizes" -m "$modes"
fi

tmo=300 # per process
work=$(mktemp -d)
srv_pid=
# shellcheck disable=SC2317 # run from the traps
cleanup() {
	[ -z "$srv_pid" ] || kill "$srv_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# shellcheck source=bench/rdma-lib.sh
. "$(dirname "$self")/rdma-lib.sh"

failed=0
rows=
brows=
# Per size: the references that the ratios divide by: round trips (us) of
# ib_write_lat and ucx am_lat, messages/s of ib_write_bw and ucx am_bw.
ref_wlat=
ref_ucx=
ref_wbw=
ref_ucxbw=

# us X: nanoseconds to microseconds, 2 decimals
us() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else printf "%.2f", x / 1000 }'; }
# half X: X/2 (a round trip in ns to one way)
half() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else printf "%.0f", x / 2 }'; }
# ratio A B: A/B to 2 decimals, "-" when either is missing
ratio() {
	case $1$2 in *-*|'') echo - ; return ;; esac
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else printf "-" }'
}
# row TOOL BYTES ONEWAY_P50 RTT_P50 RTT_P99 NOTE (microseconds or "-")
row() {
	rows="$rows$(printf '%-36s %6s %9s %9s %9s %8s %8s  %s' "$1" "$2" "$3" "$4" "$5" \
		"$(ratio "$4" "$ref_wlat")" "$(ratio "$4" "$ref_ucx")" "$6")
"
}
# brow TOOL BYTES MSGS_PER_S NOTE: a throughput row; Gb/s of payload.
brow() {
	if [ "$3" = - ]; then g=-; r=-; else
		r=$(awk -v x="$3" 'BEGIN { printf "%.0f", x }')
		g=$(awk -v x="$3" -v s="$2" 'BEGIN { printf "%.3f", x * s * 8 / 1e9 }')
	fi
	brows="$brows$(printf '%-36s %6s %10s %8s %8s %8s  %s' "$1" "$2" "$r" "$g" \
		"$(ratio "$3" "$ref_wbw")" "$(ratio "$3" "$ref_ucxbw")" "$4")
"
}
problem() { # lat|bw TOOL BYTES WHAT [OUTPUT_FILE...]
	k=$1 t=$2 b=$3 w=$4
	shift 4
	failed=1
	echo "$me: $t ($b B): $w" >&2
	show_files "$@"
	if [ "$k" = lat ]; then row "$t" "$b" - - - "$w"; else brow "$t" "$b" - "$w"; fi
}
# dbl X: 2X to 2 decimals (one-way -> round trip)
dbl() { awk -v x="$1" 'BEGIN { printf "%.2f", 2 * x }'; }

# mb_get FILE muon|raw SERIES JQ_PATH: a number from muon-bench --json,
# e.g. mb_get FILE muon rtt .latency_ns.p50. "raw" is the baseline's result
# (impl raw-verbs). "-" for a percentile the run had too few samples for
# (null in the JSON), empty when there is no such result.
mb_get() {
	jq -r --arg i "$2" --arg s "$3" \
		"[.results[] | select((.impl == \$i or (\$i == \"raw\" and (.impl | startswith(\"raw\")))) and .series == \$s) | $4 | if . == null then \"-\" else . end] | first // empty" \
		"$1" 2>/dev/null
}

# The first line that says what failed, without the program's prefix.
reason() {
	r=$(grep -m 1 'failed' "$1")
	[ -n "$r" ] || r=$(grep -m 1 . "$1")
	[ -n "$r" ] || r="no output (exit status $2)"
	printf '%s' "$r" | sed 's/^muon-bench: //'
}

# mb_failure ERR_FILE STATUS WHAT: say on stderr that the muon-bench run
# WHAT failed, with its output; print why, for the table.
mb_failure() {
	why=$(reason "$1" "$2")
	[ "$2" = 124 ] && why="timed out after $tmo s; $why"
	echo "$me: muon-bench $3 failed (exit $2):" >&2
	show_files "$1"
	printf '%s' "$why"
}

# muon_bench pingpong|throughput SIZE: muon-bench with --raw; sets m_* for
# muon and r_* for the baseline (empty when missing) and m_why, r_why. A
# run that fails on the muon side is followed by a --raw-only run.
muon_bench() {
	mode=$1 s=$2
	mbf=$work/mb-$mode-$s
	m_a='' m_b='' r_a='' r_b='' m_why='' r_why=''
	if [ "$mode" = pingpong ]; then n=$iters; else n=$msgs; fi
	timeout "$tmo" "$mb" "$mode" --transport verbs --addr "$addr" --raw \
		--size "$s" --count "$n" --json > "$mbf.out" 2> "$mbf.err"
	mrc=$?
	if [ "$mrc" = 0 ]; then
		mb_values "$mbf.out"
		[ -n "$m_a" ] || m_why="muon: failed: no figures in the output"
	else
		failed=1
		m_why="muon: failed: $(mb_failure "$mbf.err" "$mrc" \
			"$mode --raw ($s B)")"
		timeout "$tmo" "$mb" "$mode" --transport verbs --addr "$addr" --raw-only \
			--size "$s" --count "$n" --json > "$mbf.raw.out" 2> "$mbf.raw.err"
		rrc=$?
		if [ "$rrc" = 0 ]; then
			mb_values "$mbf.raw.out"
			m_a='' m_b=''
		else
			r_why="raw: failed: $(mb_failure "$mbf.raw.err" "$rrc" \
				"$mode --raw-only ($s B)")"
		fi
	fi
	[ -n "$r_a" ] || [ -n "$r_why" ] || r_why="raw: failed: no figures in the output"
	[ -z "$m_why$r_why" ] || failed=1
}
mb_values() { # FILE: m_a, m_b, r_a, r_b of $mode
	if [ "$mode" = pingpong ]; then
		m_a=$(mb_get "$1" muon rtt .latency_ns.p50) m_b=$(mb_get "$1" muon rtt .latency_ns.p99)
		r_a=$(mb_get "$1" raw rtt .latency_ns.p50) r_b=$(mb_get "$1" raw rtt .latency_ns.p99)
	else
		m_a=$(mb_get "$1" muon sub .msgs_per_s) r_a=$(mb_get "$1" raw sub .msgs_per_s)
	fi
}

latency() { # SIZE
	s=$1
	ref_wlat='' ref_ucx=''
	if perftest_lat "$s" "$iters"; then
		ref_wlat=$(dbl "$lat_typ")
		pt="$lat_typ $ref_wlat $(dbl "$lat_p99")"
	else
		pt_err=$lat_err pt_files=$lat_files
		pt=
	fi
	if ucx_lat "$s" "$iters"; then
		ref_ucx=$(dbl "$lat_p50")
		ux="$lat_p50 $ref_ucx"
		ux_layout=$lat_layout
	else
		ux_err=$lat_err ux_files=$lat_files
		ux=
	fi
	# Rows come after both references are known.
	if [ -n "$pt" ]; then
		# shellcheck disable=SC2086 # three numbers
		set -- $pt
		row "ib_write_lat -R (perftest)" "$s" "$1" "$2" "$3" "measured one-way (t_typical, 99%); RTT = 2x"
	else
		# shellcheck disable=SC2086 # a list of file names
		problem lat "ib_write_lat -R (perftest)" "$s" "$pt_err" $pt_files
	fi
	if [ -n "$ux" ]; then
		# shellcheck disable=SC2086 # two numbers
		set -- $ux
		row "ucx_perftest am_lat rc_verbs $ux_layout" "$s" "$1" "$2" - "measured one-way (50%ile); RTT = 2x"
	else
		# shellcheck disable=SC2086 # a list of file names
		problem lat "ucx_perftest am_lat rc_verbs" "$s" "$ux_err" $ux_files
	fi
	muon_bench pingpong "$s"
	t="raw WRITE_IMM ping-pong (muon-bench)"
	if [ -n "$r_a" ] && [ -n "$r_b" ]; then
		row "$t" "$s" "$(us "$(half "$r_a")")" "$(us "$r_a")" "$(us "$r_b")" "measured RTT; one-way = RTT/2"
	else
		row "$t" "$s" - - - "$r_why"
	fi
	t="muon verbs (muon-bench)"
	if [ -n "$m_a" ] && [ -n "$m_b" ]; then
		row "$t" "$s" "$(us "$(half "$m_a")")" "$(us "$m_a")" "$(us "$m_b")" "measured RTT; one-way = RTT/2"
	else
		row "$t" "$s" - - - "$m_why"
	fi
}

throughput() { # SIZE
	s=$1
	ref_wbw='' ref_ucxbw=''
	if perftest_bw "$s" "$msgs"; then
		ref_wbw=$bw_rate
	else
		pt_err=$lat_err pt_files=$lat_files
	fi
	if ucx_bw "$s" "$msgs"; then
		ref_ucxbw=$bw_rate
		ux_layout=$lat_layout
	else
		ux_err=$lat_err ux_files=$lat_files
	fi
	if [ -n "$ref_wbw" ]; then
		brow "ib_write_bw -R (perftest)" "$s" "$ref_wbw" "MsgRate at the sender, 128 writes in flight"
	else
		# shellcheck disable=SC2086 # a list of file names
		problem bw "ib_write_bw -R (perftest)" "$s" "$pt_err" $pt_files
	fi
	if [ -n "$ref_ucxbw" ]; then
		brow "ucx_perftest am_bw rc_verbs $ux_layout" "$s" "$ref_ucxbw" "msg/s overall, at the sender"
	else
		# shellcheck disable=SC2086 # a list of file names
		problem bw "ucx_perftest am_bw rc_verbs" "$s" "$ux_err" $ux_files
	fi
	muon_bench throughput "$s"
	if [ -n "$r_a" ]; then
		brow "raw WRITE_IMM stream (muon-bench)" "$s" "$r_a" "delivered, at the receiver"
	else
		brow "raw WRITE_IMM stream (muon-bench)" "$s" - "$r_why"
	fi
	if [ -n "$m_a" ]; then
		brow "muon verbs (muon-bench)" "$s" "$m_a" "delivered, at the receiver"
	else
		brow "muon verbs (muon-bench)" "$s" - "$m_why"
	fi
	# The same with muon_publishv(): 32 messages per RDMA write.
	t="muon verbs, batches of 32"
	mbf=$work/mb-batch-$s
	timeout "$tmo" "$mb" throughput --transport verbs --addr "$addr" \
		--size "$s" --count "$msgs" --burst 32 --batch --json \
		> "$mbf.out" 2> "$mbf.err"
	mrc=$?
	b_a=
	[ "$mrc" != 0 ] || b_a=$(mb_get "$mbf.out" muon sub .msgs_per_s)
	if [ -n "$b_a" ]; then
		brow "$t" "$s" "$b_a" "delivered; muon_publishv(), --batch"
	else
		failed=1
		brow "$t" "$s" - "muon: failed: $(mb_failure "$mbf.err" \
			"$mrc" "throughput --batch ($s B)")"
	fi
}

for s in $sizes; do
	[ "$do_lat" = 0 ] || latency "$s"
	[ "$do_bw" = 0 ] || throughput "$s"
done

kernel=$(uname -r)
virt=native
[ -n "${MUON_VM_GUEST:-}" ] && virt="QEMU TCG guest (emulated CPU: figures are not NIC figures)"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "muon vs raw RDMA: $dev (Soft-RoCE) at $addr, kernel $kernel, $virt"
echo "CPU: $cpu"
if [ "$do_lat" = 1 ]; then
	echo
	echo "Latency: $iters iterations per run; microseconds, medians unless p99."
	echo "perftest and ucx_perftest measure one-way latency (half the round trip): their"
	echo "RTT columns are 2x that. muon-bench measures round trips: its one-way column is RTT/2."
	echo "/wlat, /ucx: this row's RTT p50 over ib_write_lat's and ucx_perftest's at the same"
	echo "size; on the muon row they are muon/ib_write_lat and muon/ucx (below 1: muon faster)."
	echo
	printf '%-36s %6s %9s %9s %9s %8s %8s  %s\n' "tool" "bytes" "1way_p50" "rtt_p50" "rtt_p99" "/wlat" "/ucx" "note"
	printf '%s' "$rows"
fi
if [ "$do_bw" = 1 ]; then
	echo
	echo "Throughput: $msgs messages per run, one way, as fast as each tool goes; Gb/s of payload."
	echo "/wbw, /ucx: this row's messages/s over ib_write_bw's and ucx_perftest am_bw's at the"
	echo "same size; on the muon row they are muon/ib_write_bw and muon/ucx (above 1: muon faster)."
	echo
	printf '%-36s %6s %10s %8s %8s %8s  %s\n' "tool" "bytes" "msgs/s" "Gb/s" "/wbw" "/ucx" "note"
	printf '%s' "$brows"
fi
# What muon-bench warned about (clock source, shared CPUs, short runs).
warns=
for f in "$work"/mb-*.out; do
	[ -s "$f" ] || continue
	warns="$warns$(jq -r '.warnings[]?' "$f" 2>/dev/null)
"
done
warns=$(printf '%s' "$warns" | grep . | sed 's/ (here one takes [0-9.]* ns)//' | sort -u)
if [ -n "$warns" ]; then
	echo
	echo "muon-bench warned:"
	printf '%s\n' "$warns" | sed 's/^/  /'
fi
exit $failed
