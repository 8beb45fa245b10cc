#!/usr/bin/env bash
# demo.sh: install what is missing, build into ./build, then start a
# discovery daemon (muond) and the example publisher and subscriber, which
# find each other through it, and print the subscriber's latency report.
# Exits 0 only if the subscriber received every message.
#
#   usage: scripts/demo.sh [ENDPOINT [COUNT]]
#   ENDPOINT  "-" (default): discovery through muond, which picks shared
#             memory between these two processes on one host;
#             shm://NAME or tcp://127.0.0.1:PORT: no daemon, the publisher
#             listens there and the subscriber names it
#   COUNT     messages to send, default 100000 (one every 10 us)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

endpoint=${1:--}
count=${2:-100000}

bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"

pub=build/examples/muon-example-pub
sub=build/examples/muon-example-sub

muond=build/daemon/muond
pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	rm -f "${fifo:-}"
}
trap cleanup EXIT

if [[ $endpoint == - ]]; then
	# A private daemon on a free loopback port; it prints where it listens.
	fifo=$(mktemp -u "${TMPDIR:-/tmp}/muon-demo.XXXXXX")
	mkfifo "$fifo"
	"$muond" --listen tcp://127.0.0.1:0 --name demo --log-level error \
		>"$fifo" &
	pids+=($!)
	read -r _ addr <"$fifo" || true
	[[ -n ${addr:-} ]] || { echo "demo: muond did not start" >&2; exit 1; }
	export MUON_DISCOVERY=$addr
	echo "demo: muond listens on $addr; publisher and subscriber use it"
fi

how=$endpoint
[[ $endpoint != - ]] || how="found through muond"
echo "demo: publisher ($how) sends $count messages"
timeout 180 "$pub" "$endpoint" "$count" &
pub_pid=$!
pids+=("$pub_pid")

echo "demo: subscriber ($how) receives them"
sub_rc=0
timeout 120 "$sub" "$endpoint" "$count" || sub_rc=$?
((sub_rc == 0)) || kill "$pub_pid" 2>/dev/null || true
pub_rc=0
wait "$pub_pid" || pub_rc=$?

if ((sub_rc == 0 && pub_rc == 0)); then
	echo "demo: ok: the subscriber received all $count messages"
	exit 0
fi
echo "demo: FAILED (subscriber exit $sub_rc, publisher exit $pub_rc)" >&2
exit 1
