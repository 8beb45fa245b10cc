#!/bin/sh
# rdma-baselines.sh: raw RDMA latency and throughput baselines on the
# Soft-RoCE device, to put muon's own figures in context.
#
#   bench/rdma-baselines.sh [-n ITERS] [-N MSGS] [-s "SIZE..."]
#                           [-m "lat bw"] [-t VM_TIMEOUT_S]
#
# Runs, for each message size (default 32 and 4096 bytes):
#   latency (-m lat), ITERS round trips (default 5000):
#     perftest    ib_write_lat -R            (RC RDMA WRITE ping-pong, rdmacm)
#     UCX (UCT)   ucx_perftest -x rc_verbs -t am_lat (RC active messages)
#   throughput (-m bw), MSGS messages (default 20000):
#     perftest    ib_write_bw -R             (RC RDMA WRITE stream, rdmacm)
#     UCX (UCT)   ucx_perftest -x rc_verbs -t am_bw (RC active messages)
# each as a server in the background and a client to 192.0.2.1, and prints
# a table of one-way latency (half the round trip, as both tools report)
# and one of messages/s (as the sending client counts them).
#
# Where it runs: on a host that has the Soft-RoCE device rxe0 (inside the
# test VM, or a host prepared the same way). Without one it re-executes
# itself inside the VM through test/rdma/run-vm.sh.
#
# Figures under QEMU TCG measure the emulator, not a NIC: compare rows of the
# same table, never against hardware numbers. See docs/rdma-vm.md.
set -u

iters=5000
msgs=20000
sizes="32 4096"
modes="lat bw"
vm_tmo=1200
dev=${MUON_RDMA_DEV:-rxe0}
addr=${MUON_RDMA_ADDR:-192.0.2.1}
me=rdma-baselines

usage() {
	echo "usage: $0 [-n ITERS] [-N MSGS] [-s \"SIZE...\"] [-m \"lat bw\"] [-t VM_TIMEOUT_S]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	-n) [ $# -ge 2 ] || usage; iters=$2; shift 2 ;;
	-N) [ $# -ge 2 ] || usage; msgs=$2; shift 2 ;;
	-m) [ $# -ge 2 ] || usage; modes=$2; shift 2 ;;
	-s) [ $# -ge 2 ] || usage; sizes=$2; shift 2 ;;
	-t) [ $# -ge 2 ] || usage; vm_tmo=$2; shift 2 ;;
	-h|--help) usage ;;
	*) usage ;;
	esac
done
case $iters in ''|*[!0-9]*) usage ;; esac
case $msgs in ''|*[!0-9]*|0) usage ;; esac
do_lat=0 do_bw=0
for m in $modes; do
	case $m in lat) do_lat=1 ;; bw) do_bw=1 ;; *) usage ;; esac
done
[ "$do_lat$do_bw" != 00 ] || usage

self=$(cd "$(dirname "$0")" && pwd -P)/$(basename "$0")
root=$(dirname "$(dirname "$self")")

if [ ! -e "/sys/class/infiniband/$dev" ]; then
	if [ -n "${MUON_VM_GUEST:-}" ]; then
		echo "$me: error: inside the VM but there is no RDMA device $dev" >&2
		exit 1
	fi
	echo "$me: no RDMA device $dev here: running inside the Soft-RoCE VM (test/rdma/run-vm.sh)" >&2
	cd "$root" || exit 1
	exec sh "$root/test/rdma/run-vm.sh" -d "$root" -t "$vm_tmo" -- \
		sh "$self" -n "$iters" -N "$msgs" -s "$sizes" -m "$modes"
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

rows=
brows=
failed=0
# row TOOL BYTES TYPICAL AVG P99 NOTE
row() {
	rows="$rows$(printf '%-40s %6s %12s %10s %10s  %s' "$1" "$2" "$3" "$4" "$5" "$6")
"
}
# brow TOOL BYTES MSGS_PER_S MB_PER_S NOTE
brow() {
	brows="$brows$(printf '%-40s %6s %12s %10s  %s' "$1" "$2" "$3" "$4" "$5")
"
}
problem() { # lat|bw TOOL BYTES WHAT [OUTPUT_FILE...]
	k=$1 t=$2 b=$3 w=$4
	shift 4
	failed=1
	echo "$me: $t ($b B): $w" >&2
	show_files "$@"
	if [ "$k" = lat ]; then row "$t" "$b" - - - "$w"; else brow "$t" "$b" - - "$w"; fi
}

# shellcheck source=bench/rdma-lib.sh
. "$(dirname "$self")/rdma-lib.sh"

bench_perftest() {
	t="perftest ib_write_lat -R (RC WRITE)"
	for s in $sizes; do
		if perftest_lat "$s" "$iters"; then
			row "$t" "$s" "$lat_typ" "$lat_avg" "$lat_p99" "t_typical; p99 = 99% percentile"
		else
			# shellcheck disable=SC2086 # a list of file names
			problem lat "$t" "$s" "$lat_err" $lat_files
		fi
	done
}

bench_ucx() {
	t="ucx_perftest am_lat (UCT rc_verbs)"
	for s in $sizes; do
		if ucx_lat "$s" "$iters"; then
			row "$t $lat_layout" "$s" "$lat_p50" "$lat_avg" - "50.0%ile"
		else
			# shellcheck disable=SC2086 # a list of file names
			problem lat "$t" "$s" "$lat_err" $lat_files
		fi
	done
}

bench_perftest_bw() {
	t="perftest ib_write_bw -R (RC WRITE)"
	for s in $sizes; do
		if perftest_bw "$s" "$msgs"; then
			brow "$t" "$s" "$bw_rate" "$bw_mbs" "MsgRate; BW average (MiB/s)"
		else
			# shellcheck disable=SC2086 # a list of file names
			problem bw "$t" "$s" "$lat_err" $lat_files
		fi
	done
}

bench_ucx_bw() {
	t="ucx_perftest am_bw (UCT rc_verbs)"
	for s in $sizes; do
		if ucx_bw "$s" "$msgs"; then
			brow "$t $lat_layout" "$s" "$bw_rate" "$bw_mbs" "overall msg/s and MB/s"
		else
			# shellcheck disable=SC2086 # a list of file names
			problem bw "$t" "$s" "$lat_err" $lat_files
		fi
	done
}

# muon's own verbs ping-pong and the bare one of muon-bench, next to these
# two: bench/rdma-compare.sh.

if [ "$do_lat" = 1 ]; then
	bench_perftest
	bench_ucx
fi
if [ "$do_bw" = 1 ]; then
	bench_perftest_bw
	bench_ucx_bw
fi

kernel=$(uname -r)
virt=native
[ -n "${MUON_VM_GUEST:-}" ] && virt="QEMU TCG guest (emulated CPU: figures are not NIC figures)"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "RDMA baselines: $dev (Soft-RoCE) at $addr, kernel $kernel, $virt"
echo "CPU: $cpu"
if [ "$do_lat" = 1 ]; then
	echo
	echo "Latency: $iters iterations; one-way, microseconds (round trip / 2)"
	echo
	printf '%-40s %6s %12s %10s %10s  %s\n' "tool" "bytes" "typ/median" "avg" "p99" "note"
	printf '%s' "$rows"
fi
if [ "$do_bw" = 1 ]; then
	echo
	echo "Throughput: $msgs messages, one way, counted at the sender"
	echo
	printf '%-40s %6s %12s %10s  %s\n' "tool" "bytes" "msgs/s" "MB/s" "note"
	printf '%s' "$brows"
fi
exit $failed
