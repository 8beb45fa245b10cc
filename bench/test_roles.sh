#!/bin/bash
# bench/test_roles.sh MUON_BENCH MUOND TRANSPORT [netns]
#
# The two-host form of muon-bench on one host: a private muond, then
# `--role sub` and `--role pub` as two processes that find each other only
# through it, for pingpong and throughput. Each reporting side must print
# its result rows with messages delivered and none lost.
#
# Without `netns` everything runs on 127.0.0.1. With it (tcp only, needs
# root) the two sides are two hosts as far as the network goes: network
# namespaces of their own, joined by a veth pair (198.51.100.1 and .2,
# TEST-NET-2), the daemon on the pub side's address. That checks what
# loopback cannot: each context advertises the address the daemon sees it
# at, not 127.0.0.1 or 0.0.0.0, and the data crosses the veth (its byte
# counters are checked).
set -euo pipefail

bench=$1 muond=$2 transport=$3 where=${4:-loopback}
dir=$(mktemp -d "${TMPDIR:-/tmp}/muon-bench-roles.XXXXXX")
pids=()
ns_pub= ns_sub=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[[ -n $ns_pub ]] && ip netns del "$ns_pub" 2>/dev/null
	[[ -n $ns_sub ]] && ip netns del "$ns_sub" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

fail() {
	echo "bench roles/$transport: FAIL: $*" >&2
	for f in "$dir"/*.out "$dir"/*.err; do
		[[ -s $f ]] && { echo "--- $f" >&2; cat "$f" >&2; }
	done
	exit 1
}

# in_pub/in_sub CMD...: run CMD on that side's "host".
in_pub=() in_sub=()
daemon_addr=127.0.0.1
if [[ $where == netns ]]; then
	[[ $transport == tcp ]] ||
		fail "netns: only tcp crosses namespaces (shm is one host's, verbs needs an RDMA device per namespace)"
	[[ $(id -u) -eq 0 ]] ||
		fail "netns: needs root to create network namespaces (run the tests as root, as CI does)"
	command -v ip >/dev/null || fail "netns: needs ip(8) (apt-get install iproute2)"
	ns_pub=muon-roles-pub-$$ ns_sub=muon-roles-sub-$$
	veth_pub=mrp$$ veth_sub=mrs$$
	ip netns add "$ns_pub" || fail "ip netns add failed"
	ip netns add "$ns_sub" || fail "ip netns add failed"
	ip link add "$veth_pub" netns "$ns_pub" type veth peer name \
		"$veth_sub" netns "$ns_sub" || fail "cannot create a veth pair"
	ip -n "$ns_pub" addr add 198.51.100.1/24 dev "$veth_pub"
	ip -n "$ns_sub" addr add 198.51.100.2/24 dev "$veth_sub"
	for ns in "$ns_pub" "$ns_sub"; do ip -n "$ns" link set lo up; done
	ip -n "$ns_pub" link set "$veth_pub" up
	ip -n "$ns_sub" link set "$veth_sub" up
	in_pub=(ip netns exec "$ns_pub")
	in_sub=(ip netns exec "$ns_sub")
	daemon_addr=198.51.100.1
elif [[ $where != loopback ]]; then
	echo "test_roles.sh: unknown placement '$where' (netns or nothing)" >&2
	exit 2
fi

# Bytes the pub side's veth sent (netns only).
veth_tx() {
	ip -n "$ns_pub" -s link show "$veth_pub" |
		awk '/TX:/ { getline; print $1; exit }'
}

mkfifo "$dir/addr"
"${in_pub[@]}" "$muond" --listen "tcp://$daemon_addr:0" --name bench-roles \
	--log-level error >"$dir/addr" 2>"$dir/muond.err" &
pids+=($!)
read -r _ addr <"$dir/addr" || true
[[ -n ${addr:-} ]] || fail "muond did not start"

# check_rows FILE SERIES: a CSV row for SERIES, every row delivered, no loss.
check_rows() {
	grep -q "^muon,$2," "$1" || fail "$(basename "$1"): no '$2' row"
	awk -F, 'NR > 1 && ($6 + 0 <= 0 || $7 != "0") { bad = 1 }
		END { exit bad }' "$1" || fail "$(basename "$1"): loss or no data"
}

# run MODE REPORTER SERIES: both roles, the REPORTER side's CSV checked.
run() {
	local mode=$1 reporter=$2 series=$3 other args
	other=$([[ $reporter == pub ]] && echo sub || echo pub)
	args=(--transport "$transport" --discovery "$addr"
	      --run-id "smoke-$mode-$$" --csv)
	if [[ $mode == pingpong ]]; then
		args+=(--count 2000 --warmup 200)
	else
		args+=(--duration 0.3 --warmup 1000)
	fi
	local -n in_other=in_$other in_reporter=in_$reporter
	local tx0=0 tx1 status=0
	[[ $where == netns ]] && tx0=$(veth_tx)
	"${in_other[@]}" timeout 60 "$bench" "$mode" --role "$other" \
		"${args[@]}" >"$dir/$mode-$other.out" \
		2>"$dir/$mode-$other.err" &
	local bg=$!
	pids+=("$bg")
	"${in_reporter[@]}" timeout 60 "$bench" "$mode" --role "$reporter" \
		"${args[@]}" >"$dir/$mode-$reporter.out" \
		2>"$dir/$mode-$reporter.err" || status=$?
	[[ $status -eq 0 ]] ||
		fail "$mode --role $reporter exited with status $status"
	wait "$bg" || status=$?
	[[ $status -eq 0 ]] ||
		fail "$mode --role $other exited with status $status"
	check_rows "$dir/$mode-$reporter.out" "$series"
	if [[ $where == netns ]]; then
		# At least the payloads of what was timed went over the veth.
		tx1=$(veth_tx)
		local need
		need=$(awk -F, 'NR == 2 { print $6 * $5 }' \
			"$dir/$mode-$reporter.out")
		(( tx1 - tx0 >= need )) ||
			fail "$mode: the pub side's veth sent $((tx1 - tx0)) bytes, less than the $need bytes of payload timed: the data did not cross it"
	fi
	echo "bench roles/$transport ($where): $mode ok"
}

run pingpong pub rtt
run throughput sub sub
