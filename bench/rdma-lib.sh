# rdma-lib.sh: shell functions shared by rdma-baselines.sh and
# rdma-compare.sh (sourced, not run). POSIX sh.
#
# The sourcing script sets:
#   work   a private temporary directory (outputs go there)
#   tmo    timeout of each process, in seconds
#   dev    the RDMA device (rxe0)
#   addr   its IP address (192.0.2.1)
#   me     the script's name, for messages
# and kills "$srv_pid" (when not empty) from its EXIT/INT/TERM traps.
#
# Results come back in variables: lat_* (latency) or bw_* (throughput) on
# success, lat_err (why) and lat_files (outputs worth showing) on failure.
# shellcheck shell=sh disable=SC2034,SC2154 # lat_* are for the caller, work tmo dev addr me from it

srv_pid=
srv_rc=
cli_rc=
lat_port_perftest=18711
lat_port_ucx=13711

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

# cm_rejected FILE: the perftest client's connect request was rejected.
# Seen once in many runs under TCG (RDMA_CM_EVENT_REJECTED although the
# server's rdma_cm id was listening); the pair is run again, 3 runs at
# most, saying so on stderr.
cm_rejected() {
	grep -q 'RDMA_CM_EVENT_REJECTED' "$1"
}

# perftest_line TOOL SIZE ITERS NF: run perftest's TOOL (ib_write_lat or
# ib_write_bw) with -R (RC through rdmacm), server in the background,
# client to $addr. perftest samples the CPU clock rate at start-up; when
# that fails on a busy emulated CPU ("Correlation coefficient") its figures
# print as inf or nan: try again, 3 runs at most (the warning with finite
# figures is harmless). A rejected connection (see cm_rejected) is tried
# again too. On success sets perftest_line, the client's result line (the
# first starting with SIZE ITERS that has NF fields or more).
perftest_line() {
	t=$1 s=$2 n=$3 nf=$4
	perftest_line='' lat_err='' lat_files=''
	if ! command -v "$t" >/dev/null 2>&1; then
		lat_err="missing: install the Debian package perftest"
		return 1
	fi
	for try in 1 2 3; do
		lat_port_perftest=$((lat_port_perftest + 1))
		p=$lat_port_perftest
		f=$t.$s.$try
		run_pair "$f" cm "$p" \
			"$t" -R -d "$dev" -s "$s" -n "$n" -p "$p" -- \
			"$t" -R -d "$dev" -s "$s" -n "$n" -p "$p" "$addr"
		ok=$?
		lat_files="$work/$f.server $work/$f.client"
		perftest_line=$(awk -v s="$s" -v n="$n" -v nf="$nf" '$1 == s && $2 == n && NF >= nf { print; exit }' "$work/$f.client")
		if [ "$ok" != 0 ] && cm_rejected "$work/$f.client"; then
			[ "$try" = 3 ] || echo "$me: $t $s B: the connection was rejected (client exit $cli_rc), run $((try + 1)) of 3" >&2
			continue
		fi
		case $ok:$perftest_line in 0:*inf*|0:*nan*) ;; *) break ;; esac
		echo "$me: $t $s B: CPU clock calibration failed (figures are inf), run $((try + 1)) of 3" >&2
	done
	if [ "$ok" != 0 ]; then
		lat_err="FAILED (server exit $srv_rc, client exit $cli_rc)"
		return 1
	fi
	if [ -z "$perftest_line" ]; then
		lat_err="FAILED: no result line in the output"
		return 1
	fi
	return 0
}

# perftest_lat SIZE ITERS: ib_write_lat -R (RC RDMA WRITE ping-pong). On
# success sets lat_typ, lat_avg, lat_p99: one-way microseconds as perftest
# prints them (t_typical, t_avg, 99%; each the half of a round trip).
perftest_lat() {
	lat_typ='' lat_avg='' lat_p99=''
	# #bytes #iterations t_min t_max t_typical t_avg t_stdev 99% 99.9%
	perftest_line ib_write_lat "$1" "$2" 8 || return 1
	# shellcheck disable=SC2086 # split the result line into fields
	set -- $perftest_line
	case $5$6$8 in *inf*|*nan*)
		lat_err="FAILED: CPU clock calibration (r^2 < 0.9) in 3 runs"
		return 1 ;;
	esac
	lat_typ=$5 lat_avg=$6 lat_p99=$8
	return 0
}

# ucx_final TEST SIZE ITERS: ucx_perftest -x rc_verbs -t TEST (UCT RC
# active messages), server in the background, client with the server's
# address first. The short (inline) protocol carries only small messages on
# rxe; bcopy is used when UCX says the size is too large for it. On success
# sets ucx_final (the client's "Final:" line: iterations 50%ile avg overall
# MB/s(avg overall) msg/s(avg overall)) and lat_layout.
ucx_final() {
	t=$1 s=$2 n=$3
	ucx_final='' lat_layout='' lat_err='' lat_files=''
	if ! command -v ucx_perftest >/dev/null 2>&1; then
		lat_err="missing: install the Debian package ucx-utils"
		return 1
	fi
	for lat_layout in short bcopy; do
		lat_port_ucx=$((lat_port_ucx + 1))
		p=$lat_port_ucx
		f=ucx$t$s$lat_layout
		run_pair "$f" tcp "$p" \
			ucx_perftest -d "$dev:1" -x rc_verbs -t "$t" -p "$p" -- \
			ucx_perftest "$addr" -p "$p" -d "$dev:1" -x rc_verbs -t "$t" \
			-D "$lat_layout" -s "$s" -n "$n"
		ok=$?
		lat_files="$work/$f.server $work/$f.client"
		[ "$ok" = 0 ] || ! grep -q 'larger than max supported' "$work/$f.client" || continue
		break
	done
	if [ "$ok" != 0 ]; then
		lat_err="FAILED (server exit $srv_rc, client exit $cli_rc)"
		return 1
	fi
	ucx_final=$(awk '$1 == "Final:" { print; exit }' "$work/$f.client")
	if [ -z "$ucx_final" ]; then
		lat_err="FAILED: no 'Final:' line in the output"
		return 1
	fi
	return 0
}

# ucx_lat SIZE ITERS: ucx_final am_lat. On success sets lat_p50, lat_avg
# (one-way microseconds, half the round trip, as UCX prints them) and
# lat_layout.
ucx_lat() {
	lat_p50='' lat_avg=''
	ucx_final am_lat "$1" "$2" || return 1
	# shellcheck disable=SC2086 # split the result line into fields
	set -- $ucx_final
	lat_p50=$3 lat_avg=$4
	return 0
}

# perftest_bw SIZE ITERS: ib_write_bw -R (RC RDMA WRITE streaming; the
# sender posts writes with 128 in flight, the receiver's CPU takes no
# part). On success sets bw_rate (messages/s) and bw_mbs (MB/s, perftest's
# MiB-based "BW average"), both as the client measured them.
perftest_bw() {
	bw_rate='' bw_mbs=''
	# #bytes #iterations BW_peak BW_average MsgRate[Mpps]
	perftest_line ib_write_bw "$1" "$2" 5 || return 1
	# shellcheck disable=SC2086 # split the result line into fields
	set -- $perftest_line
	case $4$5 in *inf*|*nan*)
		lat_err="FAILED: CPU clock calibration (r^2 < 0.9) in 3 runs"
		return 1 ;;
	esac
	bw_mbs=$4
	bw_rate=$(awk -v x="$5" 'BEGIN { printf "%.0f", x * 1e6 }')
	return 0
}

# ucx_bw SIZE ITERS: ucx_final am_bw (active messages streamed one way, a
# handler call per message at the receiver, the closest of UCX's tests to a
# publisher streaming to a subscriber). On success sets bw_rate (messages/s)
# and bw_mbs (MB/s), the "overall" figures, and lat_layout.
ucx_bw() {
	bw_rate='' bw_mbs=''
	ucx_final am_bw "$1" "$2" || return 1
	# shellcheck disable=SC2086 # split the result line into fields
	set -- $ucx_final
	bw_mbs=$7 bw_rate=$9
	return 0
}

# show_files FILE...: the tails of outputs, on stderr.
show_files() {
	for lib_f in "$@"; do
		[ -s "$lib_f" ] && { echo "----- $(basename "$lib_f")" >&2; tail -n 15 "$lib_f" >&2; }
	done
	:
}
