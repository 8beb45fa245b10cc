#!/bin/sh
# disc_default.sh: the example publisher and subscriber with nothing but
# a discovery daemon on loopback, the subscriber restricted to verbs. The
# publisher's default listeners include verbs://0.0.0.0:0; the address it
# registers for it must be one with an RDMA device behind it (rxe0's), not
# the loopback address it reaches the daemon from, or nothing connects.
#
#   sh disc_default.sh MUOND PUB SUB
test_name=rdma.disc_default
. "$(dirname "$0")/lib.sh"

[ $# = 3 ] || fail "usage: disc_default.sh MUOND PUB SUB"
muond=$1 pub=$2 sub=$3
require_rxe

dir=$(mktemp -d "${TMPDIR:-/tmp}/muon-disc-default.XXXXXX")
trap 'kill $dpid $ppid 2>/dev/null; rm -rf "$dir"' EXIT
"$muond" --listen tcp://127.0.0.1:0 --name disc-default \
	>"$dir/muond.out" 2>"$dir/muond.err" &
dpid=$!
i=0
while ! grep -q '^listening ' "$dir/muond.out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "muond did not start: $(cat "$dir/muond.err")"
	sleep 0.1
done
addr=$(sed -n 's/^listening //p' "$dir/muond.out" | head -n 1)
note "muond on $addr"

MUON_DISCOVERY=$addr MUON_LOG_LEVEL=info "$pub" - 5000 2>"$dir/pub.err" &
ppid=$!
rc=0
MUON_DISCOVERY=$addr MUON_LOG_LEVEL=info MUON_TRANSPORT=verbs \
	timeout 120 "$sub" - 5000 >"$dir/sub.out" 2>"$dir/sub.err" || rc=$?
cat "$dir/sub.out"
if [ $rc != 0 ]; then
	sed 's/^/  pub: /' "$dir/pub.err" >&2
	sed 's/^/  sub: /' "$dir/sub.err" >&2
	fail "subscriber exit $rc"
fi
# The subscriber logs the peer it made from what the daemon listed.
grep -q "from discovery: verbs://$RDMA_ADDR:" "$dir/sub.err" ||
	fail "the subscriber did not connect to verbs://$RDMA_ADDR: $(cat "$dir/sub.err")"
wait $ppid || fail "publisher exit $?"
note "ok: the subscriber found the publisher over verbs://$RDMA_ADDR through a loopback daemon"
