#!/bin/sh
# rdma.rping: an rping server and client on 192.0.2.1 (rdmacm, RDMA READ and
# WRITE under the hood) exchange COUNT pings with data verification (-V).
# shellcheck disable=SC2034 # used by lib.sh
test_name=rdma.rping
# shellcheck source=test/rdma/lib.sh
. "$(dirname "$0")/lib.sh"

count=${MUON_RPING_COUNT:-10}
size=${MUON_RPING_SIZE:-256}
port=${MUON_RPING_PORT:-7174}
tmo=60

need rping rdmacm-utils
need rdma iproute2
require_rxe

dir=$(mktemp -d)
trap 'kill_bg; rm -rf "$dir"' EXIT

bg timeout "$tmo" rping -s -a "$RDMA_ADDR" -p "$port" -C "$count" -S "$size" -V -v \
	> "$dir/server.out" 2>&1
srv=$bg_last
wait_cm_listen "$port" 20 "$srv" || { show "$dir/server.out"; fail "rping server did not listen on $RDMA_ADDR:$port (exited or 20 s passed)"; }

timeout "$tmo" rping -c -a "$RDMA_ADDR" -p "$port" -C "$count" -S "$size" -V -v \
	> "$dir/client.out" 2>&1
crc=$?
# A failed client leaves the server waiting: stop it rather than wait $tmo s.
[ "$crc" = 0 ] || kill "$srv" 2>/dev/null
wait "$srv"
src=$?
bg_pids=

[ "$crc" = 0 ] || { show "$dir/server.out" "$dir/client.out"; fail "rping client exited with $crc (124: timed out after $tmo s)"; }
[ "$src" = 0 ] || { show "$dir/server.out" "$dir/client.out"; fail "rping server exited with $src (124: timed out after $tmo s)"; }
if grep -qi mismatch "$dir/client.out" "$dir/server.out"; then
	show "$dir/server.out" "$dir/client.out"
	fail "rping reported a data mismatch"
fi
cn=$(grep -c '^ping data: rdma-ping-' "$dir/client.out")
sn=$(grep -c '^server ping data: rdma-ping-' "$dir/server.out")
[ "$cn" = "$count" ] || { show "$dir/client.out"; fail "client verified $cn pings, want $count"; }
[ "$sn" = "$count" ] || { show "$dir/server.out"; fail "server received $sn pings, want $count"; }
tail -n 2 "$dir/client.out"
note "ok: $count pings of $size bytes verified both ways over $RDMA_DEV ($RDMA_ADDR:$port)"
