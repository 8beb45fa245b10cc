#!/bin/sh
# bench.cli: muon-bench's command line. Every bad combination exits 2 with
# a one-line reason; --help and --version work; tiny runs give the table,
# CSV and JSON their documented shape.
#
#   sh bench/test_cli.sh BUILD/bench/muon-bench
#
# Copyright 2026 The muon authors. Licensed under the Apache License 2.0.
set -u

mb=${1:?usage: test_cli.sh PATH/TO/muon-bench}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/muon-bench-cli.XXXXXX") || exit 1
hog=
# shellcheck disable=SC2317 # run by the trap
cleanup() {
	# A busy loop left behind would slow everything after this test.
	[ -n "$hog" ] && kill "$hog" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# usage_error "ARGS" REGEX: exit status 2 and a "muon-bench: " line on
# stderr matching REGEX, nothing on stdout.
usage_error() {
	args=$1 want=$2
	# shellcheck disable=SC2086 # the words of $args are the arguments
	"$mb" $args >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	if [ "$rc" != 2 ]; then
		fail "muon-bench $args: exit status $rc, want 2"
	elif ! head -n 1 "$tmp/err" | grep -q "^muon-bench: .*$want"; then
		fail "muon-bench $args: stderr does not say '$want':" \
			"$(head -n 1 "$tmp/err")"
	elif [ -s "$tmp/out" ]; then
		fail "muon-bench $args: wrote to stdout"
	fi
}

usage_error "" "missing mode"
usage_error "bogus" "unknown mode 'bogus'"
usage_error "pingpong extra" "unexpected argument 'extra'"
usage_error "pingpong --transport udp" "--transport"
usage_error "pingpong --addr 10.0.0.1" "only --transport verbs"
usage_error "pingpong --rate 1000" "--rate: pingpong"
usage_error "pingpong --burst 4" "--burst: pingpong"
usage_error "pingpong --batch" "--batch: pingpong"
usage_error "throughput --subs 2" "--subs: throughput"
usage_error "pingpong --subs 2" "--subs: pingpong"
usage_error "fanout --pubs 4" "--pubs: only streams"
usage_error "throughput --topics 2" "--topics: only streams"
usage_error "streams --pubs 2 --topics 3" "more topics than publications"
usage_error "fanout --subs 0" "--subs: 0: must be 1..64"
usage_error "fanout --subs 65" "--subs: 65: must be 1..64"
usage_error "streams --pubs 1025" "--pubs"
usage_error "pingpong --count 10 --duration 1" "exclude each other"
usage_error "pingpong --json --csv" "exclude each other"
usage_error "pingpong --count 0" "--count"
usage_error "pingpong --count -5" "--count: '-5' is not a number"
usage_error "pingpong --count 12x" "--count"
usage_error "pingpong --warmup x" "--warmup"
usage_error "throughput --duration 0" "--duration"
usage_error "throughput --duration 1e3" "--duration"
usage_error "throughput --duration -1" "--duration"
usage_error "throughput --duration nan" "--duration"
usage_error "throughput --rate 0" "--rate"
usage_error "throughput --rate 10X" "--rate"
usage_error "throughput --rate 20G" "--rate"
usage_error "throughput --burst 0" "--burst"
usage_error "pingpong --size 0" "--size"
usage_error "pingpong --size 16777217" "--size"
usage_error "pingpong --size 32,,64" "--size"
usage_error "pingpong --size 32," "--size"
usage_error "pingpong --size 64..8" "--size"
usage_error "pingpong --size 8..64:+0" "--size"
usage_error "pingpong --size 8..64:64" "--size"
usage_error "pingpong --size 1..1000:+1" "more than 64 sizes"
usage_error "pingpong --size abc" "--size"
usage_error "pingpong --cpu x" "--cpu"
usage_error "pingpong --cpu 3-1" "--cpu"
usage_error "pingpong --cpu 0,,1" "--cpu"
usage_error "pingpong --cpu 99999" "--cpu"
usage_error "pingpong --layout fibers" "--layout"
usage_error "pingpong --role both" "--role"
usage_error "pingpong --role pub" "--role: needs --discovery"
usage_error "pingpong --discovery tcp://127.0.0.1:7000" "only with --role"
usage_error "pingpong --secret-file /dev/null" "only with --role"
usage_error "pingpong --run-id x" "only with --role"
usage_error "pingpong --role pub --discovery d --run-id a/b" "--run-id"
usage_error "pingpong --role pub --discovery d --raw" "--raw"
usage_error "throughput --role sub --discovery d --layout thread" "--layout"
usage_error "pingpong --hgrm" "--hgrm: missing argument"
usage_error "pingpong -s" "-s: missing argument"
usage_error "pingpong --no-such-option" "unknown option '--no-such-option'"
usage_error "pingpong -x" "unknown option '-x'"

# $MUON_DISCOVERY stands in for --discovery: the run gets past the usage
# checks and stops at the CPU check (exit 1) before it would wait for a
# peer.
MUON_DISCOVERY=tcp://127.0.0.1:1 "$mb" pingpong --role pub --cpu 1023 \
	>/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" = 1 ] && grep -q "not available" "$tmp/err" ||
	fail "--role with \$MUON_DISCOVERY: exit status $rc: $(cat "$tmp/err")"

# --help and --version.
if "$mb" --help >"$tmp/out" 2>"$tmp/err"; then
	for w in pingpong throughput fanout streams --size --duration --rate \
		--burst --batch --subs --pubs --topics --layout --role --discovery \
		--csv --json --hgrm --png --cpu --no-progress; do
		grep -q -- "$w" "$tmp/out" || fail "--help does not mention $w"
	done
	[ -s "$tmp/err" ] && fail "--help wrote to stderr"
else
	fail "--help: exit status $?"
fi
if "$mb" --version >"$tmp/out" 2>&1; then
	grep -Eq '^muon-bench [0-9]+\.[0-9]+\.[0-9]+ \(libmuon [0-9.]+' \
		"$tmp/out" || fail "--version: $(cat "$tmp/out")"
else
	fail "--version: exit status $?"
fi

# A CPU this process may not use is an error of the run (exit 1), said
# before anything runs.
"$mb" pingpong --raw-only --cpu 1023 -n 10 >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" = 1 ] || fail "--cpu 1023: exit status $rc, want 1"
grep -q "not available" "$tmp/err" || fail "--cpu 1023: $(cat "$tmp/err")"

# ---- tiny runs: these need the runs themselves (raw_shm.c, muon_flow.c,
# raw_flow.c) and a host where two processes can ping-pong.

tiny="--no-progress --count 2000 --warmup 200"

# Table: the header block and one row per series.
if "$mb" pingpong --raw-only --transport shm $tiny >"$tmp/out" 2>"$tmp/err"
then
	grep -q '^# muon-bench pingpong' "$tmp/out" || fail "table: no title"
	grep -Eq '^impl +series +bytes +min +p50 +p90 +p99 +p99\.9 +p99\.99 +max +msgs/s +Gb/s$' \
		"$tmp/out" || fail "table: column header"
	grep -Eq '^raw-shm +rtt +32( +[0-9]+){4}' "$tmp/out" ||
		fail "table: no raw-shm rtt row"
	grep -Eq '^raw-shm +half +32 ' "$tmp/out" ||
		fail "table: no raw-shm half row"
	# 2000 samples: p99.9 and p99.99 are left out, and it is said.
	grep -q '^# warning: too few samples for p99.9' "$tmp/out" ||
		fail "table: no warning about p99.9"
else
	fail "pingpong --raw-only: exit status $?: $(tail -n 3 "$tmp/err")"
fi

# CSV: a header and one row of 21 fields per result, no comments.
hdr='impl,series,mode,transport,size,messages,lost,seconds,msgs_per_s,gbit_per_s,latency_kind,samples,min_ns,p50_ns,p90_ns,p99_ns,p99_9_ns,p99_99_ns,max_ns,mean_ns,stddev_ns'
if "$mb" pingpong --raw-only --transport shm --size 8,64 $tiny --csv \
	>"$tmp/out" 2>"$tmp/err"; then
	[ "$(head -n 1 "$tmp/out")" = "$hdr" ] || fail "csv: header"
	[ "$(wc -l <"$tmp/out")" = 5 ] || fail "csv: want 4 rows"
	awk -F, 'NR > 1 && NF != 21 { bad = 1 } END { exit bad }' \
		"$tmp/out" || fail "csv: a row without 21 fields"
	grep -q '^raw-shm,rtt,pingpong,shm,64,2000,0,' "$tmp/out" ||
		fail "csv: no 64-byte rtt row"
	grep -q '^#' "$tmp/out" && fail "csv: comment lines"
else
	fail "pingpong --csv: exit status $?: $(tail -n 3 "$tmp/err")"
fi

# JSON (checked with jq or python3, whichever is there).
json_check() {
	file=$1 expr=$2 what=$3
	if command -v jq >/dev/null 2>&1; then
		jq -e "$expr" "$file" >/dev/null 2>&1 || fail "json: $what"
	elif command -v python3 >/dev/null 2>&1; then
		python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \
			"$file" || fail "json: not valid"
	fi
}

if "$mb" pingpong --raw-only --transport shm $tiny --json \
	--hgrm "$tmp/h" >"$tmp/pp.json" 2>"$tmp/err"; then
	[ "$(wc -l <"$tmp/pp.json")" = 1 ] || fail "json: not one line"
	json_check "$tmp/pp.json" '.tool == "muon-bench" and .mode == "pingpong"
		and .transport == "shm" and (.cpus | type) == "array"
		and (.warnings | type) == "array" and (.ratios | type) == "array"' \
		"pingpong: top-level keys"
	json_check "$tmp/pp.json" '[.results[] | select(.impl == "raw-shm")]
		| length == 2' "pingpong: two raw-shm results"
	json_check "$tmp/pp.json" '.results[0] | (.size == 32
		and .messages == 2000 and .lost == 0 and .seconds > 0
		and .msgs_per_s > 0 and .latency_kind == "rtt"
		and .latency_ns.min <= .latency_ns.p50
		and .latency_ns.p50 <= .latency_ns.p99
		and .latency_ns.p99 <= .latency_ns.max
		and .latency_ns.p99_9 == null)' "pingpong: a result"
	for s in rtt half; do
		f="$tmp/h-raw-shm-$s-32.hgrm"
		if [ -s "$f" ]; then
			tail -n 1 "$f" | grep -Eq '^#\[Buckets = +[0-9]+, SubBuckets += +2048\]$' ||
				fail "hgrm: footer of $f"
			grep -Eq '^ +[0-9.]+ 1\.000000000000 +2000$' "$f" ||
				fail "hgrm: no 100 % row in $f"
		else
			fail "hgrm: $f not written"
		fi
	done
else
	fail "pingpong --json: exit status $?: $(tail -n 3 "$tmp/err")"
fi

# A flow mode through muon (muon_flow.c) and its baseline (raw_flow.c).
if "$mb" throughput --transport shm --size 64 --duration 0.1 --raw \
	--no-progress --json >"$tmp/tp.json" 2>"$tmp/err"; then
	json_check "$tmp/tp.json" '.mode == "throughput" and .batch == false
		and ([.results[] | select(.impl == "muon" and .series == "sub"
			and .messages > 0 and .msgs_per_s > 0
			and .gbit_per_s > 0)] | length == 1)
		and ([.results[] | select(.impl == "raw-shm")] | length == 1)
		and ([.ratios[] | select(.impl == "muon" and .base == "raw-shm")]
			| length == 1)' "throughput: results and ratio"
else
	fail "throughput --raw --json: exit status $?: $(tail -n 3 "$tmp/err")"
fi

# --batch: bursts through muon_publishv(), said in the output.
if "$mb" throughput --transport shm --size 64 --duration 0.1 --burst 8 \
	--batch --no-progress --json >"$tmp/tb.json" 2>"$tmp/err"; then
	json_check "$tmp/tb.json" '.batch == true and .burst == 8
		and ([.results[] | select(.impl == "muon" and .series == "sub"
			and .messages > 0 and .lost == 0)] | length == 1)' \
		"throughput --batch: $(cat "$tmp/tb.json")"
else
	fail "throughput --batch: exit status $?: $(tail -n 3 "$tmp/err")"
fi

# The bare fan-out: rows of the muon fan-out's series, each paired with
# its muon row, and a note that says what they are.
if "$mb" fanout --transport shm --subs 2 --size 64 --duration 0.1 --raw \
	--no-progress --json >"$tmp/fo.json" 2>"$tmp/err"; then
	json_check "$tmp/fo.json" '[.results[] | select(.impl == "raw-shm"
			and .latency_kind == "oneway" and .lost == 0
			and .messages > 0) | .series]
			== ["sub0","sub1","first","last"]
		and ([.ratios[] | select(.base == "raw-shm") | .series]
			== ["sub0","sub1","first","last"])
		and (.notes[0] | test("same fan-out without muon"))
		and ([.warnings[] | select(test("^raw-shm fanout 64 B to 2 subscribers: latency of the last / the first"))]
			| length == 1)' "fanout --raw: rows, ratios, note"
else
	fail "fanout --raw --json: exit status $?: $(tail -n 3 "$tmp/err")"
fi

# Host stalls (host.c): measured on the run's CPUs and reported. With a
# busy loop pinned to the same CPU the scheduler gives the check about
# half the time, so it must see at least a third lost and warn.
json_check "$tmp/tp.json" '(.host_stalls | length) >= 1
	and ([.host_stalls[] | select(.loop_ms == 100
		and .lost_pct >= 0 and .lost_pct <= 100
		and .stalls >= 0 and .max_ns >= 0)] | length)
		== (.host_stalls | length)' "host_stalls: entries"
"$mb" pingpong --transport shm $tiny --no-progress >"$tmp/st.out" 2>&1 ||
	fail "pingpong (stalls line): exit status $?"
grep -q '^# stalls:    time lost in gaps of 2 us or more of a busy loop: CPU ' \
	"$tmp/st.out" || fail "table: no '# stalls:' line"
if command -v taskset >/dev/null 2>&1; then
	# The first CPU this process may use.
	c0=$(taskset -cp $$ | sed 's/.*: //; s/[,-].*//')
	# timeout: gone within a minute even if this script is killed.
	taskset -c "$c0" timeout 60 sh -c 'while :; do :; done' &
	hog=$!
	"$mb" throughput --transport shm --cpu "$c0" --count 2000 --warmup 100 \
		--no-progress --json >"$tmp/hog.json" 2>"$tmp/err"
	st=$?
	kill "$hog"
	wait "$hog" 2>/dev/null
	hog=
	[ "$st" = 0 ] || fail "throughput next to a CPU hog: exit status $st"
	json_check "$tmp/hog.json" "([.host_stalls[] | select(.cpu == $c0
			and .lost_pct >= 33)] | length == 1)
		and ([.warnings[] | select(test(\"^CPU $c0 lost [0-9.]+% of a 100 ms busy loop\"))]
			| length == 1)" "host_stalls: a CPU hog not seen: $(cat "$tmp/hog.json")"
else
	fail "taskset (util-linux) is needed for the host-stall check"
fi

# --check-host: the checks alone, with 1 s of stalls per CPU; no rows.
"$mb" throughput --check-host --no-progress --json >"$tmp/ch.json" \
	2>"$tmp/err" || fail "--check-host: exit status $?"
json_check "$tmp/ch.json" '(.results | length) == 0
	and (.host_stalls | length) >= 1
	and ([.host_stalls[] | select(.loop_ms == 1000)] | length)
		== (.host_stalls | length)' "--check-host: $(cat "$tmp/ch.json")"
"$mb" pingpong --check-host >"$tmp/ch.out" 2>&1 ||
	fail "--check-host (table): exit status $?"
grep -q '^# --check-host: ' "$tmp/ch.out" &&
	grep -q '^# stalls: ' "$tmp/ch.out" &&
	! grep -q '^impl ' "$tmp/ch.out" ||
	fail "--check-host (table): $(cat "$tmp/ch.out")"

# Where the CPUs sit (host.c), from a fake sysfs: the run's two CPUs as
# hyper-thread siblings on two NUMA nodes (impossible, but each check
# sees one thing), the first with the powersave governor; then the same
# tree without any of it, which must stay quiet.
c1=$(taskset -cp $$ | sed 's/.*: //' | tr ',' '\n' |
	awk -F- -v c0="$c0" '{ for (c = $1; c <= ($2 == "" ? $1 : $2); c++)
		if (c != c0) { print c; exit } }')
if [ -n "$c1" ]; then
	fake=$tmp/sys/devices/system/cpu
	mkdir -p "$fake/cpu$c0/topology" "$fake/cpu$c1/topology" \
		"$fake/cpu$c0/node0" "$fake/cpu$c1/node1" "$fake/cpu$c0/cpufreq"
	echo "$c0,$c1" >"$fake/cpu$c0/topology/thread_siblings_list"
	echo "$c0,$c1" >"$fake/cpu$c1/topology/thread_siblings_list"
	echo powersave >"$fake/cpu$c0/cpufreq/scaling_governor"
	MUON_BENCH_SYSFS=$tmp/sys "$mb" pingpong --raw-only --transport shm \
		--cpu "$c0,$c1" $tiny --no-progress --json >"$tmp/topo.json" \
		2>"$tmp/err" || fail "pingpong with a fake sysfs: exit status $?"
	json_check "$tmp/topo.json" "([.warnings[] | select(test(\"^CPUs $c0 and $c1 are hyper-thread siblings\"))] | length == 1)
		and ([.warnings[] | select(test(\"^the run's CPUs are on more than one NUMA node \\\\(CPU $c0 on node 0, CPU $c1 on node 1\\\\)\"))] | length == 1)
		and ([.warnings[] | select(test(\"^CPU $c0's frequency governor is 'powersave'\"))] | length == 1)" \
		"host topology: warnings from a fake sysfs: $(cat "$tmp/topo.json")"
	echo "$c0" >"$fake/cpu$c0/topology/thread_siblings_list"
	echo "$c1" >"$fake/cpu$c1/topology/thread_siblings_list"
	rmdir "$fake/cpu$c1/node1" && mkdir "$fake/cpu$c1/node0"
	echo performance >"$fake/cpu$c0/cpufreq/scaling_governor"
	MUON_BENCH_SYSFS=$tmp/sys "$mb" pingpong --raw-only --transport shm \
		--cpu "$c0,$c1" $tiny --no-progress --json >"$tmp/topo.json" \
		2>"$tmp/err" || fail "pingpong with a quiet fake sysfs: exit status $?"
	json_check "$tmp/topo.json" '[.warnings[] | select(test("hyper-thread|NUMA|governor"))] | length == 0' \
		"host topology: a quiet fake sysfs warned: $(cat "$tmp/topo.json")"
else
	fail "the host topology check needs two CPUs this process may use"
fi

# The percentile plot: gnuplot (scripts/setup.sh installs gnuplot-nox)
# must have written a PNG.
if "$mb" pingpong --raw-only --transport shm $tiny --png "$tmp/p.png" \
	>"$tmp/out" 2>"$tmp/err"; then
	[ "$(head -c 8 "$tmp/p.png" | od -An -tx1 | tr -d ' \n')" = \
	  89504e470d0a1a0a ] || fail "png: $tmp/p.png is not a PNG"
else
	fail "pingpong --png: exit status $?: $(tail -n 3 "$tmp/err")"
fi

if [ "$failures" != 0 ]; then
	echo "bench.cli: $failures checks failed" >&2
	exit 1
fi
echo "bench.cli: all checks passed"
