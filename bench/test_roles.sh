#!/bin/bash
# bench/test_roles.sh MUON_BENCH MUOND TRANSPORT
#
# The two-host form of muon-bench on one host: a private muond on
# 127.0.0.1, then `--role sub` and `--role pub` as two processes that find
# each other only through it, for pingpong and throughput. Each reporting
# side must print its result rows with messages delivered and none lost.
set -euo pipefail

bench=$1 muond=$2 transport=$3
dir=$(mktemp -d "${TMPDIR:-/tmp}/muon-bench-roles.XXXXXX")
pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
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

mkfifo "$dir/addr"
"$muond" --listen tcp://127.0.0.1:0 --name bench-roles --log-level error \
	>"$dir/addr" 2>"$dir/muond.err" &
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
	timeout 60 "$bench" "$mode" --role "$other" "${args[@]}" \
		>"$dir/$mode-$other.out" 2>"$dir/$mode-$other.err" &
	local bg=$!
	pids+=("$bg")
	timeout 60 "$bench" "$mode" --role "$reporter" "${args[@]}" \
		>"$dir/$mode-$reporter.out" 2>"$dir/$mode-$reporter.err" ||
		fail "$mode --role $reporter exited with status $?"
	wait "$bg" || fail "$mode --role $other exited with status $?"
	check_rows "$dir/$mode-$reporter.out" "$series"
	echo "bench roles/$transport: $mode ok"
}

run pingpong pub rtt
run throughput sub sub
