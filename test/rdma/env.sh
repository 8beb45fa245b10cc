#!/bin/sh
# rdma.env: the Soft-RoCE device of the test VM is there and usable:
# ibv_devices lists rxe0, its port 1 is PORT_ACTIVE on Ethernet (RoCE), and
# its netdev carries 192.0.2.1.
# shellcheck disable=SC2034 # used by lib.sh
test_name=rdma.env
# shellcheck source=test/rdma/lib.sh
. "$(dirname "$0")/lib.sh"

need ibv_devices ibverbs-utils
need ibv_devinfo ibverbs-utils
need rdma iproute2
need ip iproute2
require_rxe

out=$(ibv_devices 2>&1) || fail "ibv_devices failed: $out"
printf '%s\n' "$out"
printf '%s\n' "$out" | awk 'NR > 2 { print $1 }' | grep -qx "$RDMA_DEV" ||
	fail "ibv_devices does not list $RDMA_DEV (is the rxe provider, package ibverbs-providers, installed?)"

info=$(ibv_devinfo -d "$RDMA_DEV" 2>&1) || fail "ibv_devinfo -d $RDMA_DEV failed: $info"
printf '%s\n' "$info"
state=$(printf '%s\n' "$info" | awk '$1 == "state:" { print $2; exit }')
[ "$state" = PORT_ACTIVE ] || fail "$RDMA_DEV port 1 state is '${state:-missing}', want PORT_ACTIVE"
ll=$(printf '%s\n' "$info" | awk '$1 == "link_layer:" { print $2; exit }')
[ "$ll" = Ethernet ] || fail "$RDMA_DEV link_layer is '${ll:-missing}', want Ethernet (RoCE)"

# rdma link show: "link rxe0/1 state ACTIVE physical_state LINK_UP netdev muonrxe0"
link=$(rdma link show "$RDMA_DEV/1" 2>&1) || fail "rdma link show $RDMA_DEV/1 failed: $link"
printf '%s\n' "$link"
netdev=$(printf '%s\n' "$link" | awk '{ for (i = 1; i < NF; i++) if ($i == "netdev") print $(i + 1) }')
[ -n "$netdev" ] || fail "$RDMA_DEV has no netdev"
ip -4 -o addr show dev "$netdev" | grep -q "inet $RDMA_ADDR/" ||
	fail "netdev $netdev of $RDMA_DEV does not carry $RDMA_ADDR"

note "ok: $RDMA_DEV PORT_ACTIVE, link layer Ethernet, netdev $netdev with $RDMA_ADDR"
