#!/bin/sh
# rdma-compare.sh: muon's verbs latency next to raw RDMA, in one boot of the
# Soft-RoCE guest.
#
#   bench/rdma-compare.sh [-n ITERS] [-b BUILD] [-s "SIZE..."] [-t VM_TIMEOUT_S]
#
# For each message size (default 32 and 4096 bytes) it runs, on rxe0 at
# 192.0.2.1:
#   ib_write_lat -R                    perftest: RC RDMA WRITE ping-pong
#   ucx_perftest -x rc_verbs -t am_lat UCX (UCT) RC active messages
#   muon-bench pingpong --transport verbs --raw
#                                      muon's verbs transport, and the bare
#                                      WRITE_WITH_IMM ping-pong beside it
# (the first two as a server in the background and a client), and prints
# one table of median one-way and round-trip latency with the ratios of
# each row to ib_write_lat and to ucx_perftest of the same size.
#
# perftest and ucx_perftest measure one-way latency as half the round trip;
# muon-bench measures round trips. The table says which column is which.
# A muon-bench whose muon side fails (e.g. a library without the verbs
# transport) shows as "muon: failed: <reason>" in the table, and the bare
# ping-pong then runs alone (--raw-only). Exit status: 0 if every row has figures, 1 if any
# failed, 2 for bad usage.
#
# -b BUILD: the build directory that holds bench/muon-bench (default
# ./build). Where it runs: on a host that has rxe0 (inside the test VM, or a
# host prepared the same way); without one it re-executes itself inside the
# VM through test/rdma/run-vm.sh -d BUILD.
#
# Figures under QEMU TCG measure the emulator, not a NIC: compare rows of
# the same table, never against hardware numbers. See docs/rdma-vm.md.
set -u

iters=10000
sizes="32 4096"
vm_tmo=1200
build=./build
dev=${MUON_RDMA_DEV:-rxe0}
addr=${MUON_RDMA_ADDR:-192.0.2.1}
me=rdma-compare

usage() {
	echo "usage: $0 [-n ITERS] [-b BUILD] [-s \"SIZE...\"] [-t VM_TIMEOUT_S]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	-n) [ $# -ge 2 ] || usage; iters=$2; shift 2 ;;
	-b) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
	-s) [ $# -ge 2 ] || usage; sizes=$2; shift 2 ;;
	-t) [ $# -ge 2 ] || usage; vm_tmo=$2; shift 2 ;;
	-h|--help) usage ;;
	*) usage ;;
	esac
done
case $iters in ''|*[!0-9]*|0) usage ;; esac
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

if [ ! -e "/sys/class/infiniband/$dev" ]; then
	if [ -n "${MUON_VM_GUEST:-}" ]; then
		echo "$me: error: inside the VM but there is no RDMA device $dev" >&2
		exit 1
	fi
	echo "$me: no RDMA device $dev here: running inside the Soft-RoCE VM (test/rdma/run-vm.sh)" >&2
	cd "$root" || exit 1
	exec sh "$root/test/rdma/run-vm.sh" -d "$build" -t "$vm_tmo" -- \
		sh "$self" -n "$iters" -b "$build" -s "$sizes"
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
rrow=
# Per size: the reference round trips (us) that the ratios divide by.
ref_wlat=
ref_ucx=

# us X: nanoseconds to microseconds, 2 decimals
us() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1000 }'; }
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
problem() { # TOOL BYTES WHAT [OUTPUT_FILE...]
	t=$1 b=$2 w=$3
	shift 3
	failed=1
	echo "$me: $t ($b B): $w" >&2
	show_files "$@"
	row "$t" "$b" - - - "$w"
}
# dbl X: 2X to 2 decimals (one-way -> round trip)
dbl() { awk -v x="$1" 'BEGIN { printf "%.2f", 2 * x }'; }

# json_get KEY FIELD FILE: a number from muon-bench --json (one line), e.g.
# json_get rtt_ns p50 FILE.
json_get() { # KEY FIELD FILE
	sed -n "s/.*\"$1\":{[^}]*\"$2\":\([0-9][0-9]*\).*/\1/p" "$3" | head -n 1
}

# The first line that says what failed, without the program's prefix.
reason() {
	r=$(grep -m 1 'failed' "$1")
	[ -n "$r" ] || r=$(grep -m 1 . "$1")
	[ -n "$r" ] || r="no output (exit status $2)"
	printf '%s' "$r" | sed 's/^muon-bench: //'
}

# muon-bench: the raw row, then the muon row, of one size. A muon-bench
# run that fails on the muon side is followed by a --raw-only run.
muon_bench() { # SIZE
	mbf=$work/mb$1
	m50='' m99='' r50='' r99='' mrow=''
	timeout "$tmo" "$mb" pingpong --transport verbs --addr "$addr" --raw \
		--size "$1" --count "$iters" --json > "$mbf.out" 2> "$mbf.err"
	mrc=$?
	if [ "$mrc" = 0 ]; then
		m50=$(json_get rtt_ns p50 "$mbf.out") m99=$(json_get rtt_ns p99 "$mbf.out")
		r50=$(json_get raw_rtt_ns p50 "$mbf.out") r99=$(json_get raw_rtt_ns p99 "$mbf.out")
	else
		failed=1
		why=$(reason "$mbf.err" "$mrc")
		[ "$mrc" = 124 ] && why="timed out after $tmo s; $why"
		echo "$me: muon-bench --raw ($1 B) failed (exit $mrc):" >&2
		show_files "$mbf.err"
		mrow="muon: failed: $why"
		timeout "$tmo" "$mb" pingpong --transport verbs --addr "$addr" --raw-only \
			--size "$1" --count "$iters" --json > "$mbf.raw.out" 2> "$mbf.raw.err"
		rrc=$?
		if [ "$rrc" = 0 ]; then
			r50=$(json_get raw_rtt_ns p50 "$mbf.raw.out")
			r99=$(json_get raw_rtt_ns p99 "$mbf.raw.out")
		else
			failed=1
			why=$(reason "$mbf.raw.err" "$rrc")
			[ "$rrc" = 124 ] && why="timed out after $tmo s; $why"
			echo "$me: muon-bench --raw-only ($1 B) failed (exit $rrc):" >&2
			show_files "$mbf.raw.err"
			rrow="raw: failed: $why"
		fi
	fi
	if [ -n "$r50" ] && [ -n "$r99" ]; then
		row "raw WRITE_IMM ping-pong (muon-bench)" "$1" "$(us "$((r50 / 2))")" \
			"$(us "$r50")" "$(us "$r99")" "measured RTT; one-way = RTT/2"
	else
		failed=1
		row "raw WRITE_IMM ping-pong (muon-bench)" "$1" - - - "${rrow:-raw: failed: no figures in the output}"
	fi
	if [ -n "$m50" ] && [ -n "$m99" ]; then
		row "muon verbs (muon-bench)" "$1" "$(us "$((m50 / 2))")" \
			"$(us "$m50")" "$(us "$m99")" "measured RTT; one-way = RTT/2"
	else
		failed=1
		row "muon verbs (muon-bench)" "$1" - - - "${mrow:-muon: failed: no figures in the output}"
	fi
	rrow=
}

for s in $sizes; do
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
		problem "ib_write_lat -R (perftest)" "$s" "$pt_err" $pt_files
	fi
	if [ -n "$ux" ]; then
		# shellcheck disable=SC2086 # two numbers
		set -- $ux
		row "ucx_perftest am_lat rc_verbs $ux_layout" "$s" "$1" "$2" - "measured one-way (50%ile); RTT = 2x"
	else
		# shellcheck disable=SC2086 # a list of file names
		problem "ucx_perftest am_lat rc_verbs" "$s" "$ux_err" $ux_files
	fi
	muon_bench "$s"
done

kernel=$(uname -r)
virt=native
[ -n "${MUON_VM_GUEST:-}" ] && virt="QEMU TCG guest (emulated CPU: figures are not NIC figures)"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "muon vs raw RDMA: $dev (Soft-RoCE) at $addr, kernel $kernel, $virt"
echo "CPU: $cpu; $iters iterations per run; latencies in microseconds, medians unless p99."
echo "perftest and ucx_perftest measure one-way latency (half the round trip): their"
echo "RTT columns are 2x that. muon-bench measures round trips: its one-way column is RTT/2."
echo "/wlat, /ucx: this row's RTT p50 over ib_write_lat's and ucx_perftest's at the same"
echo "size; on the muon row they are muon/ib_write_lat and muon/ucx."
echo
printf '%-36s %6s %9s %9s %9s %8s %8s  %s\n' "tool" "bytes" "1way_p50" "rtt_p50" "rtt_p99" "/wlat" "/ucx" "note"
printf '%s' "$rows"
exit $failed
