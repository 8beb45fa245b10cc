# lib.sh: shared helpers of the rdma tests (sourced, POSIX sh).
#
# The tests expect the Soft-RoCE set-up that test/rdma/run-vm.sh creates in
# its guest: device rxe0 on a dummy netdev with 192.0.2.1/24. CMake passes
# MUON_SOURCE_DIR and MUON_BUILD_DIR so that a failure can say how to run
# the tests properly.

RDMA_DEV=${MUON_RDMA_DEV:-rxe0}
RDMA_ADDR=${MUON_RDMA_ADDR:-192.0.2.1}
test_name=${test_name:-rdma}

fail() {
	printf 'FAIL %s: %s\n' "$test_name" "$*" >&2
	exit 1
}
note() { printf '%s: %s\n' "$test_name" "$*"; }

how_to_run() {
	src=${MUON_SOURCE_DIR:-<muon source dir>}
	bld=${MUON_BUILD_DIR:-<build dir>}
	printf 'run %s/test/rdma/run-vm.sh -d %s -- ctest --test-dir %s -L rdma --no-tests=error\n' "$src" "$bld" "$bld"
	printf '(or: cmake --build %s --target check-rdma); see docs/rdma-vm.md\n' "$bld"
}

# need COMMAND PACKAGE
need() {
	command -v "$1" >/dev/null 2>&1 ||
		fail "'$1' not found: install the Debian package '$2' (scripts/setup.sh)"
}

# Fail unless the Soft-RoCE device of the test VM is here and usable.
require_rxe() {
	devs=$(ls /sys/class/infiniband 2>/dev/null | tr '\n' ' ')
	if [ -z "$devs" ]; then
		printf 'FAIL %s: no RDMA device: these tests need the Soft-RoCE device %s (%s) of the test VM;\n' \
			"$test_name" "$RDMA_DEV" "$RDMA_ADDR" >&2
		how_to_run >&2
		exit 1
	fi
	if [ ! -e "/sys/class/infiniband/$RDMA_DEV" ]; then
		printf 'FAIL %s: no RDMA device %s: found only %sbut these tests need the Soft-RoCE device %s (%s) of the test VM;\n' \
			"$test_name" "$RDMA_DEV" "$devs" "$RDMA_DEV" "$RDMA_ADDR" >&2
		how_to_run >&2
		exit 1
	fi
}

# Background processes: started with bg, killed on exit.
bg_pids=
bg() {
	"$@" &
	bg_pids="$bg_pids $!"
	# shellcheck disable=SC2034 # for the sourcing script
	bg_last=$!
}
kill_bg() {
	for p in $bg_pids; do kill "$p" 2>/dev/null; done
	for p in $bg_pids; do wait "$p" 2>/dev/null; done
	bg_pids=
}
trap 'kill_bg' EXIT
trap 'kill_bg; exit 130' INT
trap 'kill_bg; exit 143' TERM

# alive PID: the process runs (an exited child that the shell has not
# reaped yet is a zombie and still answers kill -0).
alive() {
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$st" ] && [ "$st" != Z ]
}

# wait_cm_listen PORT SECONDS [PID]: wait until an rdma_cm id listens on
# PORT; give up after SECONDS or as soon as process PID has exited.
wait_cm_listen() {
	end=$(($(date +%s) + $2))
	while ! rdma res show cm_id 2>/dev/null | grep -q "state LISTEN .*src-addr [^ ]*:$1 "; do
		[ -z "${3:-}" ] || alive "$3" || return 1
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# Print the output files of the test's processes (on failure).
show() {
	for f in "$@"; do
		[ -f "$f" ] || continue
		echo "----- $f" >&2
		cat "$f" >&2
	done
}
