#!/usr/bin/env bash
# demo.sh: install what is missing, build into ./build, then run the example
# publisher and subscriber against each other and print the subscriber's
# latency report. Exits 0 only if the subscriber received every message.
#
#   usage: scripts/demo.sh [ENDPOINT [COUNT]]
#   ENDPOINT  shm://NAME (default, same host) or tcp://127.0.0.1:PORT
#   COUNT     messages to send, default 100000 (one every 10 us)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

endpoint=${1:-shm://muon-demo-$$}
count=${2:-100000}

bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"

pub=build/examples/muon-example-pub
sub=build/examples/muon-example-sub

# Discovery: once muond exists, it starts here and both programs find each
# other through it rather than through the static endpoint below.

echo "demo: publisher listens on $endpoint and sends $count messages"
timeout 180 "$pub" "$endpoint" "$count" &
pub_pid=$!
trap 'kill "$pub_pid" 2>/dev/null || true' EXIT

echo "demo: subscriber connects to $endpoint"
sub_rc=0
timeout 120 "$sub" "$endpoint" "$count" || sub_rc=$?
((sub_rc == 0)) || kill "$pub_pid" 2>/dev/null || true
pub_rc=0
wait "$pub_pid" || pub_rc=$?
trap - EXIT

if ((sub_rc == 0 && pub_rc == 0)); then
	echo "demo: ok: the subscriber received all $count messages"
	exit 0
fi
echo "demo: FAILED (subscriber exit $sub_rc, publisher exit $pub_rc)" >&2
exit 1
