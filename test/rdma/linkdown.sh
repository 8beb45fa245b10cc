#!/bin/sh
# rdma.linkdown: the link and the RDMA device go away under a live verbs
# stream, and come back.
#
#   linkdown.sh PATH/TO/muon-linkdown-peer
#
# Twice, each time with a fresh publisher and subscriber process
# (muon-linkdown-peer, a message every 2 ms over verbs://192.0.2.1:PORT, a
# fixed port), while data flows:
#   (b) `rdma link del rxe0`: it must finish within 20 s. rxe cannot
#       disassociate user contexts, so the kernel waits until every process
#       has closed the device: the library must release everything it holds
#       on it and make librdmacm close its cached device context, which
#       librdmacm can do only while another RDMA device exists (its device
#       list resync gives up on an empty list). The test therefore adds a
#       second device, rxe1 on a dummy netdev with 198.51.100.1, for this
#       phase. The subscriber must report the image down, neither process
#       may crash; then `rdma link add rxe0 type rxe netdev NETDEV` and the
#       subscriber reconnects by itself and receives again;
#   (a) `ip link set NETDEV down`, 8 s, `up`: both processes live through
#       it; either data keeps flowing or the subscriber reports the image
#       down (no silent stall); after `up` the subscriber reconnects and
#       receives again. If it does not, a control rping on another port
#       tells a muon failure from the guest's: after a link flap with live
#       RC traffic, Soft-RoCE on a dummy netdev completes no rdma_cm
#       connection at all (not even rping's) until rxe0 is re-created, so
#       that part is then reported, not failed (docs/rdma-vm.md). This
#       phase comes last for that reason.
# A failed phase does not stop the other one; the test fails if either did.
# Each phase ends with both processes exiting within 15 s of SIGTERM, with
# status 0 (the subscriber checked every message: order, bytes, gaps only
# where a LOSS event says so). Whatever happens (trap, and a deadline of its own well
# inside ctest's timeout), the processes are killed, rxe0 is re-created if
# it was flapped or removed, and rxe1 is removed: later tests of the same
# VM boot need rxe0 as it was.
#
# The emulated guest is slow and the stream keeps a CPU busy: waits are
# against the clock, and polling loops fork nothing (the subscriber keeps
# its counters in a one-line status file that `read` takes in).
# shellcheck disable=SC2034 # used by lib.sh
test_name=rdma.linkdown
# shellcheck source=test/rdma/lib.sh
. "$(dirname "$0")/lib.sh"

peer=${1:-${MUON_LINKDOWN_PEER:-}}
port=${MUON_LINKDOWN_PORT:-7176}
rping_port=$((port + 1))
dev2=${MUON_RDMA_DEV2:-rxe1}
netdev2=muonrxe1
addr2=198.51.100.1/24 # TEST-NET-2: never routes anywhere
down_s=8        # how long the link stays down
del_tmo=20      # rdma link del must finish within this
back_tmo=45     # data flows again within this after the device is back
flap_tmo=20     # ... after the link is back (then the control rping)
exit_tmo=15     # the processes exit within this after SIGTERM
deadline=420    # the whole test (ctest's TIMEOUT is 600 s)

need rdma iproute2
need ip iproute2
need rping rdmacm-utils
require_rxe
{ [ -n "$peer" ] && [ -x "$peer" ]; } ||
	fail "usage: linkdown.sh PATH/TO/muon-linkdown-peer (got '${peer:-nothing}')"

netdev=$(rdma link show "$RDMA_DEV/1" 2>/dev/null |
	awk '{ for (i = 1; i < NF; i++) if ($i == "netdev") print $(i + 1) }')
[ -n "$netdev" ] || fail "cannot find the netdev of $RDMA_DEV (rdma link show $RDMA_DEV/1)"

dir=$(mktemp -d)
status=$dir/sub.status
pub_pid=''
sub_pid=''
del_pid=''
flapped=''     # rxe0 needs re-creating at the end
added2=''
watchdog=''
me=$$

# ------------------------------------------------------------ helpers
# Clock without a process: T = whole seconds of uptime, T_ = with decimals.
tick() { read -r T_ _ < /proc/uptime; T=${T_%.*}; }
# since T0_: seconds since T0_ (a T_ value), one decimal.
since() { tick; awk -v a="$1" -v b="$T_" 'BEGIN { printf "%.1f", b - a }'; }

# running PID: the process exists and is not a zombie (builtins only).
running() {
	{ read -r _st < "/proc/$1/stat"; } 2>/dev/null || return 1
	_st=${_st##*) }
	[ "${_st%% *}" != Z ]
}

# gone PID SECONDS: wait until PID has exited (0), at most SECONDS (1).
gone() {
	tick; _end=$((T + $2))
	while running "$1"; do
		tick; [ "$T" -lt "$_end" ] || return 1
		sleep 0.1
	done
}

# The subscriber's counters: S_RECV S_LAST S_UPS S_DOWNS S_LOSSES S_ERRORS
# S_IMAGES (0 until its first status line).
sub_status() {
	S_RECV=0 S_LAST=0 S_UPS=0 S_DOWNS=0 S_LOSSES=0 S_ERRORS=0 S_IMAGES=0
	[ -r "$status" ] || return 0
	{ read -r S_RECV S_LAST S_UPS S_DOWNS S_LOSSES S_ERRORS S_IMAGES < "$status"; } 2>/dev/null || :
}

# received_more N SECONDS: wait until the subscriber has N more messages
# than now; 1 if SECONDS pass first or a process died.
received_more() {
	sub_status; _target=$((S_RECV + $1))
	tick; _end=$((T + $2))
	while sub_status; [ "$S_RECV" -lt "$_target" ]; do
		{ running "$pub_pid" && running "$sub_pid"; } || return 1
		tick; [ "$T" -lt "$_end" ] || return 1
		sleep 0.2
	done
}

port_active() {
	{ read -r _ps < "/sys/class/infiniband/$1/ports/1/state"; } 2>/dev/null &&
		[ "${_ps#*: }" = ACTIVE ]
}
# wait_active DEV: up to 10 s.
wait_active() {
	tick; _end=$((T + 10))
	while ! port_active "$1"; do
		tick; [ "$T" -lt "$_end" ] || return 1
		sleep 0.1
	done
}

# Where a process that does not go away is stuck (kernel stacks).
stuck() {
	{ read -r _st < "/proc/$1/stat"; } 2>/dev/null
	_st=${_st##*) }
	printf '%s: process %s (%s) is stuck in state %s:\n' "$test_name" "$1" \
		"$(cat "/proc/$1/comm" 2>/dev/null)" "${_st%% *}" >&2
	for t in /proc/"$1"/task/*; do
		printf '  thread %s, wchan %s:\n' "${t##*/}" "$(cat "$t/wchan" 2>/dev/null)" >&2
		sed 's/^/    /' "$t/stack" >&2 2>/dev/null
	done
}

# del_dev DEV SECONDS: rdma link del in the background, waited for at most
# SECONDS; 0 if it finished (its status in del_rc). It blocks in the
# kernel, uninterruptibly, while a process holds the device; del_pid stays
# set then.
del_dev() {
	rdma link del "$1" > "$dir/del.out" 2>&1 &
	del_pid=$!
	gone "$del_pid" "$2" || return 1
	wait "$del_pid"
	del_rc=$?
	del_pid=''
}

# What a process holds of the removed device: uverbs files and event files
# (librdmacm's cached device context is one of each: the uverbs file and
# its async event file; each muon context adds a completion channel).
held() {
	_u=0 _e=0
	for _f in /proc/"$1"/fd/*; do
		case $(readlink "$_f" 2>/dev/null) in
		*infiniband/uverbs*deleted*) _u=$((_u + 1)) ;;
		*infinibandevent*) _e=$((_e + 1)) ;;
		esac
	done
	echo "$_u uverbs file(s) of the removed device, $_e event file(s)"
}

# rping_ok: a control rdma_cm connection (3 pings) on rxe0, without muon.
rping_ok() {
	timeout 10 rping -s -a "$RDMA_ADDR" -p "$rping_port" -C 3 > "$dir/rping-s.out" 2>&1 &
	_s=$!
	wait_cm_listen "$rping_port" 5 "$_s"
	timeout 10 rping -c -a "$RDMA_ADDR" -p "$rping_port" -C 3 > "$dir/rping-c.out" 2>&1
	_c=$?
	[ "$_c" = 0 ] || kill "$_s" 2>/dev/null
	wait "$_s"
	_w=$?
	[ "$_c" = 0 ] && [ "$_w" = 0 ]
}

# Bring the devices back to the state the VM started with.
restore() {
	for p in $pub_pid $sub_pid; do kill -KILL "$p" 2>/dev/null; done
	for p in $pub_pid $sub_pid; do
		if gone "$p" 10; then wait "$p" 2>/dev/null; else stuck "$p"; fi
	done
	pub_pid=''
	sub_pid=''
	# A pending `rdma link del` finishes once the processes are gone.
	if [ -n "$del_pid" ]; then
		if gone "$del_pid" 30; then
			wait "$del_pid" 2>/dev/null
			del_pid=''
		else
			printf '%s: warning: rdma link del is still blocked 30 s after the muon processes were killed\n' "$test_name" >&2
			stuck "$del_pid"
		fi
	fi
	ip link set "$netdev" up 2>/dev/null
	# After a link flap with live connections rxe0 completes no rdma_cm
	# connection until it is re-created.
	if [ -n "$flapped" ] && [ -z "$del_pid" ] &&
		[ -e "/sys/class/infiniband/$RDMA_DEV" ]; then
		del_dev "$RDMA_DEV" 30 || {
			printf '%s: warning: could not re-create %s (rdma link del blocked)\n' "$test_name" "$RDMA_DEV" >&2
			stuck "$del_pid"
		}
	fi
	if [ ! -e "/sys/class/infiniband/$RDMA_DEV" ]; then
		rdma link add "$RDMA_DEV" type rxe netdev "$netdev" ||
			printf '%s: error: could not restore %s on %s\n' "$test_name" "$RDMA_DEV" "$netdev" >&2
	fi
	wait_active "$RDMA_DEV" ||
		printf '%s: error: %s port 1 is not ACTIVE after the restore\n' "$test_name" "$RDMA_DEV" >&2
	flapped=''
	if [ -n "$added2" ] && [ -z "$del_pid" ]; then
		del_dev "$dev2" 30 ||
			printf '%s: warning: rdma link del %s blocked\n' "$test_name" "$dev2" >&2
		ip link del "$netdev2" 2>/dev/null
		added2=''
	fi
}

cleanup() {
	trap - EXIT INT TERM
	[ -z "$watchdog" ] || kill "$watchdog" 2>/dev/null
	note "restoring $RDMA_DEV${added2:+, removing $dev2}"
	restore
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'printf "FAIL %s: terminated (deadline of %s s)\n" "$test_name" "$deadline" >&2; exit 143' TERM
# Our own deadline, so that the restore runs before ctest kills us.
( sleep "$deadline"; kill -TERM "$me" ) > /dev/null 2>&1 &
watchdog=$!

# ------------------------------------------------------------ phases
# Each phase runs its own publisher and subscriber; a failed phase is
# recorded (failures), its processes are killed and rxe0 restored, and the
# next phase still runs. The device removal comes first, on a device that
# has not been flapped (a flap leaves rxe0 unable to connect until it is
# re-created).
failures=''
phase=''

# pfail MESSAGE: show the phase's output, record the failure, clean up.
pfail() {
	show "$dir/pub.out" "$dir/sub.out"
	printf 'FAIL %s: %s\n' "$test_name" "$*" >&2
	failures="$failures
  $*"
	restore
}

# alive_check WHEN: both processes run; else pfail and 1.
alive_check() {
	running "$pub_pid" || { pfail "($phase) the publisher died $1 (its output is above)"; return 1; }
	running "$sub_pid" || { pfail "($phase) the subscriber died $1 (its output is above)"; return 1; }
}

last_down() { grep '^DOWN' "$dir/sub.out" | tail -n 1; }

# start_pair: a publisher and a subscriber, streaming (500 messages seen).
start_pair() {
	rm -f "$status"
	"$peer" pub "$ep" > "$dir/pub.out" 2>&1 &
	pub_pid=$!
	tick; _end=$((T + 20))
	until grep -q '^LISTEN ' "$dir/pub.out"; do
		tick
		{ running "$pub_pid" && [ "$T" -lt "$_end" ]; } ||
			{ pfail "($phase) the publisher did not listen on $ep within 20 s"; return 1; }
		sleep 0.1
	done
	MUON_LINKDOWN_STATUS=$status "$peer" sub "$ep" > "$dir/sub.out" 2>&1 &
	sub_pid=$!
	received_more 500 60 ||
		{ pfail "($phase) the subscriber did not receive 500 messages within 60 s of its start"; return 1; }
	sub_status
	note "($phase) streaming over $RDMA_DEV ($netdev), $ep: $S_RECV received"
}

# stop PID: SIGTERM; 0 if it exits within $exit_tmo s, else SIGKILL and 1.
stop() {
	kill -TERM "$1" 2>/dev/null
	gone "$1" "$exit_tmo" && return 0
	kill -KILL "$1" 2>/dev/null
	return 1
}

# stop_pair: both exit by themselves within $exit_tmo s of SIGTERM, after
# muon_ctx_destroy() returned, with status 0 (every check passed).
stop_pair() {
	stop "$sub_pid"; _sub_ok=$?
	gone "$sub_pid" 5 || { stuck "$sub_pid"; pfail "($phase) the subscriber does not go away even after SIGKILL"; return 1; }
	wait "$sub_pid"; _sub_rc=$?
	stop "$pub_pid"; _pub_ok=$?
	gone "$pub_pid" 5 || { stuck "$pub_pid"; pfail "($phase) the publisher does not go away even after SIGKILL"; return 1; }
	wait "$pub_pid"; _pub_rc=$?
	sub_pid=''
	pub_pid=''
	_why=''
	[ "$_sub_ok" = 0 ] || _why="the subscriber did not exit within $exit_tmo s of SIGTERM (killed)"
	[ "$_pub_ok" = 0 ] || _why="the publisher did not exit within $exit_tmo s of SIGTERM (killed)"
	[ -n "$_why" ] || grep -q '^DESTROYED' "$dir/sub.out" || _why="the subscriber exited without finishing muon_ctx_destroy (status $_sub_rc)"
	[ -n "$_why" ] || grep -q '^DESTROYED' "$dir/pub.out" || _why="the publisher exited without finishing muon_ctx_destroy (status $_pub_rc)"
	[ -n "$_why" ] || [ "$_sub_rc" = 0 ] || _why="the subscriber exited with $_sub_rc: a message was out of order, wrong, or missing without a LOSS event"
	[ -n "$_why" ] || [ "$_pub_rc" = 0 ] || _why="the publisher exited with $_pub_rc: a publish call failed"
	[ -z "$_why" ] || { pfail "($phase) $_why"; return 1; }
	grep '^LOSS' "$dir/sub.out" | sed "s/^/$test_name: ($phase) subscriber: /"
	note "($phase) both exited cleanly: subscriber $(grep '^EXIT' "$dir/sub.out"), $(grep -c '^UP' "$dir/sub.out") IMAGE_UP, $(grep -c '^DOWN' "$dir/sub.out") IMAGE_DOWN; publisher $(grep '^EXIT' "$dir/pub.out")"
}

# (b) rdma link del rxe0 under the stream, then rdma link add.
phase_remove() {
	phase=b
	start_pair || return 1
	sub_status; _downs0=$S_DOWNS _ups0=$S_UPS
	tick; _t0=$T_
	note "(b) rdma link del $RDMA_DEV (must finish within $del_tmo s)"
	if ! del_dev "$RDMA_DEV" "$del_tmo"; then
		_h_pub=$(held "$pub_pid")
		_h_sub=$(held "$sub_pid")
		alive_check "while rdma link del $RDMA_DEV was pending" || return 1
		sub_status
		note "(b) rdma link del $RDMA_DEV still blocked after $del_tmo s ($((S_DOWNS - _downs0)) IMAGE_DOWN meanwhile: $(last_down)); killing the muon processes"
		show "$dir/pub.out" "$dir/sub.out"
		: > "$dir/pub.out"
		: > "$dir/sub.out"
		# Killing the processes closes their device files; the removal
		# then finishes at once if nothing else holds the device.
		kill -KILL "$pub_pid" "$sub_pid" 2>/dev/null
		gone "$pub_pid" 10
		gone "$sub_pid" 10
		tick; _t1=$T_
		if gone "$del_pid" 30; then
			_took="it finished $(since "$_t1") s after the muon processes were killed"
		else
			_took="it had not finished 30 s after the muon processes were killed either"
		fi
		pfail "(b) 'rdma link del $RDMA_DEV' did not finish within $del_tmo s ($_took): rxe cannot disassociate user contexts, so the kernel waits until every process has closed the device. Still open then: publisher $_h_pub; subscriber $_h_sub. One uverbs file and one event file are librdmacm's cached device context: the library must make librdmacm drop it (rdma_get_devices() + rdma_free_devices() once nothing of its own remains on the device; $dev2 is there so that librdmacm can resync its device list); more event files are muon completion channels not freed"
		return 1
	fi
	[ "$del_rc" = 0 ] || { pfail "(b) rdma link del $RDMA_DEV failed ($del_rc): $(cat "$dir/del.out")"; return 1; }
	note "(b) rdma link del $RDMA_DEV finished in $(since "$_t0") s"
	tick; _end=$((T + 5))
	while sub_status; [ "$S_DOWNS" = "$_downs0" ]; do
		tick; [ "$T" -lt "$_end" ] || { pfail "(b) no IMAGE_DOWN within 5 s of the device's removal (the stream stalls silently)"; return 1; }
		sleep 0.1
	done
	sleep 2
	alive_check "after $RDMA_DEV was removed" || return 1
	note "(b) subscriber: $(last_down)"
	note "(b) rdma link add $RDMA_DEV type rxe netdev $netdev"
	rdma link add "$RDMA_DEV" type rxe netdev "$netdev" ||
		{ pfail "(b) rdma link add $RDMA_DEV type rxe netdev $netdev failed"; return 1; }
	wait_active "$RDMA_DEV" || { pfail "(b) the re-added $RDMA_DEV port 1 did not become ACTIVE within 10 s"; return 1; }
	tick; _t0=$T_
	if ! received_more 500 "$back_tmo"; then
		sub_status
		pfail "(b) no 500 new messages within $back_tmo s of $RDMA_DEV coming back ($((S_UPS - _ups0)) new IMAGE_UP)"
		return 1
	fi
	sub_status
	[ "$S_UPS" -gt "$_ups0" ] || { pfail "(b) data flows again but no new IMAGE_UP was reported"; return 1; }
	alive_check "after $RDMA_DEV came back" || return 1
	note "(b) $RDMA_DEV back: reconnected and receiving after $(since "$_t0") s"
	stop_pair
}

# (a) ip link set NETDEV down, then up.
phase_flap() {
	phase=a
	start_pair || return 1
	sub_status; _downs0=$S_DOWNS _ups0=$S_UPS _recv0=$S_RECV
	tick; _t0=$T_
	flapped=1
	ip link set "$netdev" down || { pfail "(a) ip link set $netdev down failed"; return 1; }
	note "(a) $netdev down ($(since "$_t0") s for ip link)"
	# The last 2 s of the down time tell whether data still flows.
	sleep $((down_s - 2))
	sub_status; _r_a=$S_RECV
	sleep 2
	sub_status; _r_b=$S_RECV _downs1=$S_DOWNS
	alive_check "while $netdev was down" || return 1
	{ read -r _state < "/sys/class/infiniband/$RDMA_DEV/ports/1/state"; } 2>/dev/null || _state='?'
	tick; _t1=$T_
	ip link set "$netdev" up || { pfail "(a) ip link set $netdev up failed"; return 1; }
	note "(a) $netdev down for $(since "$_t0") s (ip link up took $(since "$_t1") s; $RDMA_DEV port $_state): $((_r_b - _recv0)) messages received meanwhile, $((_r_b - _r_a)) in its last 2 s; $((_downs1 - _downs0)) IMAGE_DOWN: $(last_down)"
	if [ "$_r_b" = "$_r_a" ] && [ "$_downs1" = "$_downs0" ]; then
		pfail "(a) with $netdev down the stream stalled (no message for 2 s) and the subscriber reported no IMAGE_DOWN within $down_s s (its heartbeat timeout is 3 s)"
		return 1
	fi
	wait_active "$RDMA_DEV" || { pfail "(a) $RDMA_DEV port 1 not ACTIVE 10 s after $netdev came back up (was: $_state)"; return 1; }
	tick; _t0=$T_
	if received_more 500 "$flap_tmo"; then
		sub_status
		note "(a) $netdev back up: data flows again after $(since "$_t0") s ($((S_UPS - _ups0)) new IMAGE_UP)"
		[ "$_downs1" = "$_downs0" ] || [ "$S_UPS" -gt "$_ups0" ] ||
			{ pfail "(a) data flows again after an IMAGE_DOWN but no new IMAGE_UP was reported"; return 1; }
	else
		alive_check "after $netdev came back up" || return 1
		if rping_ok; then
			pfail "(a) no 500 new messages within $flap_tmo s of $netdev coming back up, although rdma_cm works (a control rping on port $rping_port succeeded)"
			return 1
		fi
		note "(a) NOT CHECKED: no reconnect within $flap_tmo s of $netdev coming back up, and a control rping on port $rping_port fails as well: after a link flap with live connections, rxe0 completes no rdma_cm connection (the guest's Soft-RoCE, not muon; it is re-created at the end)"
	fi
	alive_check "after $netdev came back up" || return 1
	stop_pair
}

# ------------------------------------------------------------ run
if [ ! -e "/sys/class/infiniband/$dev2" ]; then
	ip link show "$netdev2" > /dev/null 2>&1 || ip link add "$netdev2" type dummy
	added2=1
	{ ip addr replace "$addr2" dev "$netdev2" && ip link set "$netdev2" up &&
		rdma link add "$dev2" type rxe netdev "$netdev2"; } ||
		fail "cannot add the second device $dev2 on $netdev2 ($addr2)"
fi
ep="verbs://$RDMA_ADDR:$port"
phase_remove
# pfail's restore removed rxe1; the flap does not need it.
phase_flap
if [ -n "$failures" ]; then
	fail "failed:$failures"
fi
note "ok: the stream survives the link going down and the device going away"
