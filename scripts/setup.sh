#!/usr/bin/env bash
# setup.sh: install the Debian 12 packages that muon's build, tests and tools
# need, and only those that are missing. Idempotent; non-interactive.
# Run as root. As another user it only reports what is missing (exit 1).
set -euo pipefail

packages=(
	# build
	build-essential cmake pkg-config clang libclang-rt-14-dev
	# libraries
	libibverbs-dev librdmacm-dev libprotobuf-c-dev protobuf-c-compiler
	libev-dev libinih-dev libsodium-dev libcmocka-dev
	# RDMA user space and tools (Soft-RoCE, perftest, UCX for comparison)
	rdma-core ibverbs-providers ibverbs-utils rdmacm-utils perftest ucx-utils
	iproute2
	# the Soft-RoCE test VM
	qemu-system-x86 busybox-static kmod cpio
	# bench/compare-peers.sh: the ZeroMQ and NNG peers (bench/peers) and
	# jq, which reads the benchmarks' JSON (also in the rdma-*.sh scripts)
	libzmq3-dev libnng-dev jq
	# muon-bench --png draws its percentile plot with gnuplot
	gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$p")
done

# The Soft-RoCE VM fetches Debian's kernel package on its first run, which
# needs package lists; refresh them if they were cleaned away.
lists_ok() {
	compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

if ((${#missing[@]} == 0)); then
	echo "setup: all ${#packages[@]} packages are installed"
	if ! lists_ok && ((EUID == 0)); then
		echo "setup: no apt package lists; running apt-get update"
		apt-get update -q
	fi
	exit 0
fi

if ((EUID != 0)); then
	echo "setup: missing packages: ${missing[*]}" >&2
	echo "setup: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
