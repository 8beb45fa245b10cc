#!/bin/sh
# bench/test_smoke.sh MUON_BENCH MODE TRANSPORT [EXTRA ARGS...]
#
# CI smoke test of one muon-bench mode on one transport: a short run in CSV
# must exit 0, print at least one result row per expected series, every
# row with messages delivered and none lost, and a latency for every
# one-way or round-trip row. With --raw the baseline's rows are expected
# too: the same series (streams: the one-subscriber floor, "sub"). Figures
# are not judged: CI machines are too noisy for that
# (docs/performance.md has the real runs).
set -eu

bench=$1 mode=$2 transport=$3
shift 3
out=$(mktemp "${TMPDIR:-/tmp}/muon-bench-smoke.XXXXXX")
trap 'rm -f "$out" "$out.err" "$out.why"' EXIT INT TERM

fail() {
	echo "bench smoke $mode/$transport: FAIL: $*" >&2
	echo "--- stdout" >&2
	cat "$out" >&2
	echo "--- stderr" >&2
	cat "$out.err" >&2
	exit 1
}

case $mode in
pingpong) args="--count 2000 --warmup 200"; want="rtt half" ;;
throughput) args="--duration 0.3 --warmup 1000"; want="sub" ;;
fanout) args="--duration 0.3 --warmup 1000 --subs 3"
	want="sub0 sub1 sub2 first last" ;;
streams) args="--duration 0.3 --warmup 1000 --pubs 8 --topics 3"
	want="all" ;;
*) echo "test_smoke.sh: unknown mode $mode" >&2; exit 2 ;;
esac
raw=
for a in "$@"; do
	case $a in --raw|-r) raw=raw-$transport ;; esac
done

# shellcheck disable=SC2086 # args is a word list on purpose
status=0
"$bench" "$mode" --transport "$transport" $args --csv "$@" \
	>"$out" 2>"$out.err" || status=$?
[ "$status" -eq 0 ] || fail "muon-bench exited with status $status"

head -n 1 "$out" | grep -q '^impl,series,mode,transport,size,messages,lost,' ||
	fail "no CSV header"
for s in $want; do
	grep -q "^muon,$s,$mode,$transport," "$out" ||
		fail "no result row for series '$s'"
done
if [ -n "$raw" ]; then
	rawmode=$mode rawwant=$want
	[ "$mode" = streams ] && rawmode=throughput rawwant=sub
	for s in $rawwant; do
		grep -q "^$raw,$s,$rawmode,$transport," "$out" ||
			fail "no $raw result row for series '$s'"
	done
fi
# messages > 0, lost == 0, and latency samples unless the row is
# throughput-only. Not a p50: on a loaded CI machine a short flat-out run
# (latency sampled 1 in 64) may have too few samples for one, which the
# tool rightly leaves out.
awk -F, 'NR > 1 {
	rows++
	if ($6 + 0 <= 0) { print "row " NR ": no messages delivered"; bad = 1 }
	if ($7 != "0") { print "row " NR ": " $7 " messages lost"; bad = 1 }
	if ($11 != "none" && ($12 + 0 <= 0 || $13 == "")) {
		print "row " NR ": no latency samples"; bad = 1
	}
}
END { if (!rows) { print "no result rows"; bad = 1 } exit bad }' "$out" >"$out.why" ||
	{ why=$(cat "$out.why"); rm -f "$out.why"; fail "$why"; }
rm -f "$out.why"
echo "bench smoke $mode/$transport: ok ($(($(wc -l <"$out") - 1)) rows)"
