#!/bin/sh
# rdma-baselines.sh: raw RDMA latency baselines on the Soft-RoCE device, to
# put muon's own figures in context.
#
#   bench/rdma-baselines.sh [-n ITERS] [-s "SIZE..."] [-t VM_TIMEOUT_S]
#
# Runs, for each message size (default 32 and 4096 bytes):
#   perftest      ib_write_lat -R            (RC RDMA WRITE ping-pong, rdmacm)
#   UCX (UCT)     ucx_perftest -x rc_verbs -t am_lat (RC active messages)
# each as a server in the background and a client to 192.0.2.1, and prints
# one table of one-way latency (half the round trip, as both tools report).
#
# Where it runs: on a host that has the Soft-RoCE device rxe0 (inside the
# test VM, or a host prepared the same way). Without one it re-executes
# itself inside the VM through test/rdma/run-vm.sh.
#
# Figures under QEMU TCG measure the emulator, not a NIC: compare rows of the
# same table, never against hardware numbers. See docs/rdma-vm.md.
set -u

iters=5000
sizes="32 4096"
vm_tmo=1200
dev=${MUON_RDMA_DEV:-rxe0}
addr=${MUON_RDMA_ADDR:-192.0.2.1}
me=rdma-baselines

usage() {
	echo "usage: $0 [-n ITERS] [-s \"SIZE...\"] [-t VM_TIMEOUT_S]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	-n) [ $# -ge 2 ] || usage; iters=$2; shift 2 ;;
	-s) [ $# -ge 2 ] || usage; sizes=$2; shift 2 ;;
	-t) [ $# -ge 2 ] || usage; vm_tmo=$2; shift 2 ;;
	-h|--help) usage ;;
	*) usage ;;
	esac
done
case $iters in ''|*[!0-9]*) usage ;; esac

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
		sh "$self" -n "$iters" -s "$sizes"
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
failed=0
# row TOOL BYTES TYPICAL AVG P99 NOTE
row() {
	rows="$rows$(printf '%-40s %6s %12s %10s %10s  %s' "$1" "$2" "$3" "$4" "$5" "$6")
"
}
problem() { # TOOL BYTES WHAT [OUTPUT_FILE...]
	t=$1 b=$2 w=$3
	shift 3
	failed=1
	echo "$me: $t ($b B): $w" >&2
	for f in "$@"; do
		[ -s "$f" ] && { echo "----- $(basename "$f")" >&2; tail -n 15 "$f" >&2; }
	done
	row "$t" "$b" - - - "$w"
}

# alive PID: running, not a zombie waiting to be reaped (kill -0 succeeds on those).
alive() {
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$st" ] && [ "$st" != Z ]
}

# Wait until something listens: an rdma_cm id (perftest) or a TCP socket (UCX).
wait_listen() { # cm|tcp PORT PID
	end=$(($(date +%s) + 30))
	while :; do
		case $1 in
		cm) rdma res show cm_id 2>/dev/null | grep -q "state LISTEN .*src-addr [^ ]*:$2 " && return 0 ;;
		tcp) [ -n "$(ss -Hltn "sport = :$2" 2>/dev/null)" ] && return 0 ;;
		esac
		alive "$3" || return 1
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# run_pair NAME PORT-KIND PORT SERVER_CMD... -- CLIENT_CMD...
# Leaves the outputs in $work/NAME.server, $work/NAME.client and the exit
# statuses in $srv_rc, $cli_rc (124: timed out). Returns 0 if both are 0.
run_pair() {
	name=$1 kind=$2 port=$3
	shift 3
	scmd=
	while [ $# -gt 0 ] && [ "$1" != -- ]; do scmd="$scmd $(printf "'%s'" "$1")"; shift; done
	shift
	eval "timeout $tmo $scmd" > "$work/$name.server" 2>&1 &
	srv_pid=$!
	if ! wait_listen "$kind" "$port" "$srv_pid"; then
		kill "$srv_pid" 2>/dev/null
		wait "$srv_pid"; srv_rc=$?; srv_pid=
		cli_rc=-1
		return 1
	fi
	timeout "$tmo" "$@" > "$work/$name.client" 2>&1
	cli_rc=$?
	if [ "$cli_rc" != 0 ]; then
		# Give the server 5 s to notice, then stop it.
		end=$(($(date +%s) + 5))
		while alive "$srv_pid" && [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
		kill "$srv_pid" 2>/dev/null
	fi
	wait "$srv_pid"; srv_rc=$?; srv_pid=
	[ "$cli_rc" = 0 ] && [ "$srv_rc" = 0 ]
}

bench_perftest() {
	t="perftest ib_write_lat -R (RC WRITE)"
	if ! command -v ib_write_lat >/dev/null 2>&1; then
		for s in $sizes; do problem "$t" "$s" "missing: install the Debian package perftest"; done
		return
	fi
	port=18711
	for s in $sizes; do
		# perftest samples the CPU clock rate at start-up; when that fails on
		# a busy emulated CPU ("Correlation coefficient") all results print
		# as inf: try again, 3 runs at most.
		for try in 1 2 3; do
			port=$((port + 1))
			n=wlat$s.$try
			run_pair "$n" cm "$port" \
				ib_write_lat -R -d "$dev" -s "$s" -n "$iters" -p "$port" -- \
				ib_write_lat -R -d "$dev" -s "$s" -n "$iters" -p "$port" "$addr"
			ok=$?
			[ "$ok" = 0 ] && grep -q 'Correlation coefficient' "$work/$n.client" || break
			echo "$me: ib_write_lat $s B: CPU clock calibration failed, run $((try + 1)) of 3" >&2
		done
		if [ "$ok" != 0 ]; then
			problem "$t" "$s" "FAILED (server exit $srv_rc, client exit $cli_rc)" "$work/$n.server" "$work/$n.client"
			continue
		fi
		if grep -q 'Correlation coefficient' "$work/$n.client"; then
			problem "$t" "$s" "FAILED: CPU clock calibration (r^2 < 0.9) in 3 runs" "$work/$n.client"
			continue
		fi
		# #bytes #iterations t_min t_max t_typical t_avg t_stdev 99% 99.9%
		line=$(awk -v s="$s" -v n="$iters" '$1 == s && $2 == n && NF >= 8 { print; exit }' "$work/$n.client")
		if [ -z "$line" ]; then
			problem "$t" "$s" "FAILED: no result line in the output" "$work/$n.client"
			continue
		fi
		# shellcheck disable=SC2086 # split the result line into fields
		set -- $line
		row "$t" "$s" "$5" "$6" "$8" "t_typical; p99 = 99% percentile"
	done
}

bench_ucx() {
	t="ucx_perftest am_lat (UCT rc_verbs)"
	if ! command -v ucx_perftest >/dev/null 2>&1; then
		for s in $sizes; do problem "$t" "$s" "missing: install the Debian package ucx-utils"; done
		return
	fi
	port=13711
	for s in $sizes; do
		# The short (inline) AM protocol carries only small messages on rxe;
		# fall back to bcopy when UCX says the size is too large for it.
		for layout in short bcopy; do
			port=$((port + 1))
			n=ucx$s$layout
			run_pair "$n" tcp "$port" \
				ucx_perftest -d "$dev:1" -x rc_verbs -t am_lat -p "$port" -- \
				ucx_perftest "$addr" -p "$port" -d "$dev:1" -x rc_verbs -t am_lat \
				-D "$layout" -s "$s" -n "$iters"
			ok=$?
			[ "$ok" = 0 ] || ! grep -q 'larger than max supported' "$work/$n.client" || continue
			break
		done
		if [ "$ok" != 0 ]; then
			problem "$t" "$s" "FAILED (server exit $srv_rc, client exit $cli_rc)" "$work/$n.server" "$work/$n.client"
			continue
		fi
		# Final: iterations 50%ile avg overall MB/s(avg overall) msg/s(avg overall)
		line=$(awk '$1 == "Final:" { print; exit }' "$work/$n.client")
		if [ -z "$line" ]; then
			problem "$t" "$s" "FAILED: no 'Final:' line in the output" "$work/$n.client"
			continue
		fi
		# shellcheck disable=SC2086 # split the result line into fields
		set -- $line
		row "$t $layout" "$s" "$3" "$4" - "50.0%ile"
	done
}

# muon's verbs ping-pong (muon-bench) joins this table once the verbs
# transport exists: add a bench_muon here and call it below.

bench_perftest
bench_ucx

kernel=$(uname -r)
virt=native
[ -n "${MUON_VM_GUEST:-}" ] && virt="QEMU TCG guest (emulated CPU: figures are not NIC figures)"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "RDMA baselines: $dev (Soft-RoCE) at $addr, kernel $kernel, $virt"
echo "CPU: $cpu; $iters iterations; one-way latency in microseconds (round trip / 2)"
echo
printf '%-40s %6s %12s %10s %10s  %s\n' "tool" "bytes" "typ/median" "avg" "p99" "note"
printf '%s' "$rows"
exit $failed
