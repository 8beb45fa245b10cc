#!/usr/bin/env bash
# compare-peers.sh: muon next to ZeroMQ and NNG on one host, in one run.
#
#   bench/compare-peers.sh [--build DIR] [--sizes "32 1024"]
#       [--transports "tcp ipc"] [--modes "pingpong throughput"]
#       [--libs "zmq nng"] [--count N] [--warmup N] [--duration S]
#       [--cpu A,B] [--peer-opts "OPTIONS"] [--out DIR]
#
# For each transport, size and mode it runs
#   muon-bench MODE --transport tcp|shm --size N ... --json   (muon)
#   muon-peer-zmq MODE --transport tcp|ipc --size N ... --json (ZeroMQ)
#   muon-peer-nng MODE --transport tcp|ipc --size N ... --json (NNG)
# one after the other, and prints one table. "ipc" compares muon's shared
# memory transport (shm) with the libraries' ipc:// (Unix domain sockets):
# each library's fastest way between two processes of one host.
#
#   pingpong    one message in flight, --count round trips after --warmup;
#               the table gives the round trip's p50 and p99 in ns
#   throughput  one sender to one receiver as fast as it goes for
#               --duration seconds; the table gives messages/s at the
#               receiver
#
# The ratio columns are peer/muon. For latency rows a ratio above 1 means
# muon is faster; for messages/s a ratio below 1 means muon is faster (the
# "muon ahead" column says which applies to the row).
#
# Each side runs in its own process, pinned: side 0 (ping, sender) to CPU A,
# side 1 to CPU B (--cpu, default 0,1). The peers use pair sockets (ZeroMQ
# PAIR, NNG pair1), pin all threads of a side (the libraries' I/O threads
# too) to its CPU and receive blocking: what measured fastest on the
# development machine (polling receives were 2-5x slower, push/pull no
# faster, and 6x slower for NNG). --peer-opts passes other options to both
# peers, e.g. "--wait spin --pin app --pattern pipeline" (muon-peer-zmq
# --help lists them). Nothing is built: configure
# and build DIR first (the peers are built when libzmq3-dev and libnng-dev
# are installed; scripts/setup.sh installs both). --out DIR keeps every
# program's JSON and stderr there.
#
# Exit status: 0 if every cell has a figure, 1 if any run failed or a
# program is missing, 2 for bad usage.
set -eu

build=build
sizes="32 1024"
transports="tcp ipc"
modes="pingpong throughput"
libs="zmq nng"
count=20000
warmup=2000
duration=2
cpu=0,1
out=
peer_opts=
me=compare-peers

usage() {
	sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
die() { echo "$me: error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case $1 in
	--build|--sizes|--transports|--modes|--libs|--count|--warmup|--duration|--cpu|--out|--peer-opts)
		[ $# -ge 2 ] || usage
		v=$2
		case $1 in
		--build) build=$v ;;
		--sizes) sizes=$v ;;
		--transports) transports=$v ;;
		--modes) modes=$v ;;
		--libs) libs=$v ;;
		--count) count=$v ;;
		--warmup) warmup=$v ;;
		--duration) duration=$v ;;
		--cpu) cpu=$v ;;
		--out) out=$v ;;
		--peer-opts) peer_opts=$v ;;
		esac
		shift 2 ;;
	-h|--help) usage ;;
	*) echo "$me: unknown argument '$1'" >&2; usage ;;
	esac
done
for v in $sizes "$count" "$warmup"; do
	case $v in ''|*[!0-9]*|0) echo "$me: not a positive number: '$v'" >&2; usage ;; esac
done
case $duration in ''|*[!0-9.]*|*.*.*|.) echo "$me: bad --duration '$duration'" >&2; usage ;; esac
case $cpu in [0-9]*,[0-9]*) ;; *) echo "$me: --cpu wants A,B" >&2; usage ;; esac
for t in $transports; do case $t in tcp|ipc) ;; *) echo "$me: transport '$t': tcp or ipc" >&2; usage ;; esac; done
for m in $modes; do case $m in pingpong|throughput) ;; *) echo "$me: mode '$m': pingpong or throughput" >&2; usage ;; esac; done
for l in $libs; do case $l in zmq|nng) ;; *) echo "$me: library '$l': zmq or nng" >&2; usage ;; esac; done
if [ -z "$sizes" ] || [ -z "$transports" ] || [ -z "$modes" ]; then usage; fi

command -v jq >/dev/null 2>&1 ||
	die "jq not found: install the Debian package jq (scripts/setup.sh does)"
[ -d "$build" ] || die "build directory '$build' not found (--build DIR; configure and build it first)"
mb=$build/bench/muon-bench
[ -x "$mb" ] || die "$mb not found: build it first (cmake --build $build --target muon-bench)"
declare -A pkg=([zmq]=libzmq3-dev [nng]=libnng-dev)
for l in $libs; do
	[ -x "$build/bench/peers/muon-peer-$l" ] ||
		die "$build/bench/peers/muon-peer-$l not found: install the Debian package ${pkg[$l]} (scripts/setup.sh does), then re-run cmake on $build and build it (cmake --build $build --target muon-peer-$l); or leave $l out with --libs"
done

if [ -n "$out" ]; then
	mkdir -p "$out"
	work=$(cd "$out" && pwd -P)
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi
trap 'exit 130' INT
trap 'exit 143' TERM

failed=0
# value[impl,transport,size,metric] = number; why[...] for failures.
declare -A value

# run IMPL TRANSPORT SIZE MODE: runs one program, leaves its JSON results
# (one object per line) in $work/IMPL-TRANSPORT-SIZE-MODE.json. 1 on failure
# (and says why).
run() {
	local impl=$1 tr=$2 size=$3 mode=$4 f rc=0 how
	f=$work/$impl-$tr-$size-$mode
	if [ "$mode" = pingpong ]; then
		how=(--count "$count" --warmup "$warmup")
	else
		how=(--duration "$duration")
	fi
	echo "$me: $impl $mode $tr $size B" >&2
	if [ "$impl" = muon ]; then
		local mtr=$tr
		[ "$tr" = ipc ] && mtr=shm
		timeout 600 "$mb" "$mode" --transport "$mtr" --size "$size" \
			"${how[@]}" --cpu "$cpu" --json > "$f.out" 2> "$f.err" || rc=$?
		# muon-bench: one JSON document with a "results" array.
		[ "$rc" != 0 ] || jq -c '.results[]' "$f.out" > "$f.json" 2>> "$f.err" || rc=$?
	else
		# shellcheck disable=SC2086 # --peer-opts is a list of options
		timeout 600 "$build/bench/peers/muon-peer-$impl" "$mode" --transport "$tr" \
			--size "$size" "${how[@]}" --cpu "$cpu" $peer_opts --json > "$f.out" 2> "$f.err" || rc=$?
		# the peers: one JSON object per line.
		[ "$rc" != 0 ] || jq -c '.' "$f.out" > "$f.json" 2>> "$f.err" || rc=$?
	fi
	if [ "$rc" != 0 ]; then
		echo "$me: $impl $mode over $tr, $size B: failed (exit $rc)$([ "$rc" = 124 ] && echo ', timed out'):" >&2
		tail -n 15 "$f.err" >&2
		failed=1
		return 1
	fi
}

# get IMPL TRANSPORT SIZE MODE SERIES JQ_PATH: a number from run's results,
# or "null".
get() {
	local f=$work/$1-$2-$3-$4.json v
	v=$(jq -r --arg s "$5" --arg i "$1" \
		"select(.series == \$s and .impl == \$i) | $6 | tostring" "$f" 2>/dev/null | head -n 1)
	# null: a percentile the run had too few samples for (shown as "-")
	case $v in
	'') return 1 ;;
	esac
	printf '%s' "$v"
}

metrics_of() { # MODE
	case $1 in
	pingpong) echo "rtt_p50_ns rtt_p99_ns" ;;
	throughput) echo "msgs_per_s" ;;
	esac
}

collect() { # IMPL TRANSPORT SIZE MODE
	local impl=$1 tr=$2 size=$3 mode=$4 v
	if [ "$mode" = pingpong ]; then
		v=$(get "$impl" "$tr" "$size" "$mode" rtt .latency_ns.p50) &&
			value[$impl,$tr,$size,rtt_p50_ns]=$v
		v=$(get "$impl" "$tr" "$size" "$mode" rtt .latency_ns.p99) &&
			value[$impl,$tr,$size,rtt_p99_ns]=$v
	else
		v=$(get "$impl" "$tr" "$size" "$mode" sub .msgs_per_s) &&
			value[$impl,$tr,$size,msgs_per_s]=$v
	fi
	for m in $(metrics_of "$mode"); do
		if [ -z "${value[$impl,$tr,$size,$m]:-}" ]; then
			echo "$me: $impl $mode over $tr, $size B: no $m in its JSON ($work/$impl-$tr-$size-$mode.out)" >&2
			failed=1
		fi
	done
}

for tr in $transports; do
	for size in $sizes; do
		for mode in $modes; do
			for impl in muon $libs; do
				if run "$impl" "$tr" "$size" "$mode"; then
					collect "$impl" "$tr" "$size" "$mode"
				fi
			done
		done
	done
done

# ratio A B: A/B to 2 decimals, "-" when either is missing
ratio() {
	case $1:$2 in *:|:*|*null*) echo -; return ;; esac
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else printf "-" }'
}
num() { # a figure as printed: integers, "failed" when missing, "-" for null
	[ -n "$1" ] || { echo failed; return; }
	[ "$1" != null ] || { echo -; return; }
	awk -v x="$1" 'BEGIN { printf "%.0f", x }'
}

peer_desc() { # sockets, receive and pinning as the peers reported them
	local f d
	for f in "$work"/zmq-*.json "$work"/nng-*.json; do
		[ -e "$f" ] || continue
		d=$(jq -r '"\(.impl) \(.mode) \(.pattern), \(if .wait == "spin" then "polling" else "blocking" end) receive, pin \(.pin)"' "$f" | head -n 1)
		printf '%s\n' "$d"
	done | sort -u | paste -s -d ';' - | sed 's/;/; /g'
}

ver() { # the version the peer reported, or "?"
	local f v
	for f in "$work"/"$1"-*.json; do
		[ -e "$f" ] || continue
		v=$(jq -r '.version // empty' "$f" | head -n 1)
		[ -z "$v" ] || { echo "$v"; return; }
	done
	echo "?"
}

echo
echo "muon vs ZeroMQ and NNG, $(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), $(nproc) CPUs"
echo "CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
echo "muon: $mb; libraries:$(for l in $libs; do printf ' %s %s' "$l" "$(ver "$l")"; done)"
echo "pingpong: $count round trips after $warmup; throughput: $duration s; sides on CPUs $cpu"
echo "peers: $(peer_desc)"
echo "ipc: muon's shm transport against ipc:// (Unix sockets) of the libraries."
echo "Ratios are peer/muon: on latency rows >1 means muon is faster, on msgs/s rows <1 does."
echo
hdr="%-9s %6s %-11s %12s"
args=("transport" "bytes" "metric" "muon")
for l in $libs; do hdr="$hdr %12s"; args+=("$l"); done
for l in $libs; do hdr="$hdr %9s"; args+=("$l/muon"); done
hdr="$hdr  %s"
args+=("muon ahead if")
# shellcheck disable=SC2059 # the format is built above
printf "$hdr\n" "${args[@]}"
for tr in $transports; do
	for size in $sizes; do
		for mode in $modes; do
			for m in $(metrics_of "$mode"); do
				label=$tr
				[ "$tr" = ipc ] && label=ipc/shm
				mu=${value[muon,$tr,$size,$m]:-}
				args=("$label" "$size" "$m" "$(num "$mu")")
				for l in $libs; do args+=("$(num "${value[$l,$tr,$size,$m]:-}")"); done
				for l in $libs; do args+=("$(ratio "${value[$l,$tr,$size,$m]:-}" "$mu")"); done
				case $m in msgs_per_s) args+=("ratio < 1") ;; *) args+=("ratio > 1") ;; esac
				# shellcheck disable=SC2059
				printf "$hdr\n" "${args[@]}"
			done
		done
	done
done
# What muon-bench warned about (clock source, shared CPUs, short runs).
warns=$(for f in "$work"/muon-*.out; do
	[ -s "$f" ] && jq -r '.warnings[]?' "$f" 2>/dev/null
done | sed 's/ (here one takes [0-9.]* ns)//' | sort -u)
if [ -n "$warns" ]; then
	echo
	echo "muon-bench warned:"
	printf '%s\n' "$warns" | sed 's/^/  /'
fi
if [ "$failed" != 0 ]; then
	echo >&2
	echo "$me: some runs failed (see above); their cells say 'failed'" >&2
fi
exit "$failed"
