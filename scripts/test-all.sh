#!/usr/bin/env bash
# test-all.sh: every test muon has, from a fresh Debian 12 machine (as root).
#
# Stages, in order:
#   setup               scripts/setup.sh installs what is missing
#   build               ./build, RelWithDebInfo
#   ctest               every test except label `rdma`, in ./build
#   install             cmake --install build into a temporary prefix
#   consumer-cmake      test/install built against that prefix through
#                       find_package(muon), shared and static, and run
#   consumer-pkgconfig  test/install/main.c built with a pkg-config line, run
#   release-build       ./build-release, Release (-O3): compiles only, for
#                       the warnings (-Werror) that only optimisation finds
#   asan-build          ./build-asan, Debug, -DMUON_SANITIZE=ON (ASan+UBSan)
#   asan-ctest          the same tests under the sanitizers, with
#                       MUON_ITEST_SCALE=50 (integration tests divide their
#                       message counts by it)
#   fuzz                the libFuzzer targets of test/fuzz (clang, ASan,
#                       UBSan): muon-fuzz-conn and muon-fuzz-disc, 60 s
#                       each from their seed corpora
#   rdma                `ctest -L rdma` inside the Soft-RoCE VM of
#                       test/rdma/run-vm.sh, when that script exists; its
#                       failure fails the run only when CI is set
#
# Every stage runs even if an earlier one failed, unless it needs that
# stage's output (then it is skipped). The last line is
# "test-all: N passed, M failed[, K skipped]", counting stages; the exit
# status is non-zero if any stage failed (rdma: only under CI).
# shellcheck disable=SC2317 # functions are run indirectly, through stage()
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit
root=$PWD
jobs=$(nproc)

passed=0 failed=0 skipped=0 fatal=0
results=()

# stage NAME COMMAND...: run one stage and record its result.
stage() {
	local name=$1
	shift
	echo
	echo "=== test-all: $name"
	local start=$SECONDS rc=0
	"$@" || rc=$?
	local took=$((SECONDS - start))
	if ((rc == 0)); then
		passed=$((passed + 1))
		results+=("  ok      $name (${took}s)")
	else
		failed=$((failed + 1))
		fatal=1
		results+=("  FAILED  $name (${took}s, exit $rc)")
	fi
	echo "=== test-all: $name: $([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")"
	return "$rc"
}

skip() {
	skipped=$((skipped + 1))
	results+=("  skipped $1 ($2)")
	echo
	echo "=== test-all: $1: skipped ($2)"
}

build() { # build DIR BUILD_TYPE [CMAKE_ARGS...]
	local dir=$1 type=$2
	shift 2
	cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" &&
		cmake --build "$dir" -j"$jobs"
}

prefix=$(mktemp -d "${TMPDIR:-/tmp}/muon-install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT

# Every ctest run's output is kept, so the summary (the part of a CI log
# that is read first, and sometimes the only part kept) can repeat the
# failing tests with the end of their output.
ctest_logs=()

run_logged() { # run_logged LOG COMMAND...: COMMAND's output also into LOG
	local log=$1
	shift
	ctest_logs+=("$log")
	"$@" 2>&1 | tee "$log"
}

# Tests are independent (unique shm names, port 0), so two run at once.
run_ctest() { # run_ctest DIR [CTEST_ARGS...]
	local dir=$1
	shift
	run_logged "$prefix/ctest-${#ctest_logs[@]}.log" \
		ctest --test-dir "$dir" --output-on-failure -j2 --timeout 900 "$@"
}

# failed_tests LOG: each failed test's result line, then the last 40 lines
# of its output. ctest -j prints a test's whole output right after its
# result line, so a block ends at the next "Start" or result line.
failed_tests() {
	awk '
	{ sub(/\r$/, "") }
	/^Test project / { project = substr($0, 14); next }
	function flush() {
		if (!inb) return
		s = (n > 40) ? n - 40 : 0
		if (s) print "      [" s " earlier lines]"
		for (i = s + 1; i <= n; i++) print "      | " buf[i]
		inb = 0; n = 0
	}
	/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: / || /^ *Start +[0-9]+: / ||
	/^[0-9]+% tests passed/ {
		flush()
		if ($0 ~ /Test +#/ && $0 !~ / Passed /) {
			if (project != shown) print "  in " project ":"
			shown = project
			print "    " $0; inb = 1
		}
		next
	}
	inb { buf[++n] = $0 }
	END { flush() }' "$1"
}

# test/install against the installed tree, through find_package(muon):
# one program linked to muon::muon, one to muon::muon_static.
consumer_cmake() {
	local out=$prefix/consumer
	cmake -S "$root/test/install" -B "$out" -DCMAKE_PREFIX_PATH="$prefix" &&
		cmake --build "$out" -j"$jobs" &&
		"$out/muon-install-test" &&
		"$out/muon-install-test-static"
}

# The same program built with a plain compiler line from muon.pc.
consumer_pkgconfig() (
	pc=$(find "$prefix" -path '*/pkgconfig/muon.pc' | head -n 1)
	[[ -n $pc ]] || { echo "muon.pc is not installed"; exit 1; }
	export PKG_CONFIG_PATH=${pc%/muon.pc}
	flags=$(pkg-config --cflags --libs muon) || exit 1
	libdir=$(pkg-config --variable=libdir muon) || exit 1
	echo "cc -std=c11 main.c $flags"
	# shellcheck disable=SC2086 # pkg-config output is meant to be split
	cc -std=c11 -Wall -Werror -o "$prefix/pkgconfig-test" \
		"$root/test/install/main.c" $flags &&
		LD_LIBRARY_PATH=$libdir "$prefix/pkgconfig-test"
)

# ---------------------------------------------------------------- stages
stage setup bash scripts/setup.sh

built=0
if stage build build "$root/build" RelWithDebInfo; then
	built=1
	stage ctest run_ctest "$root/build" -LE '^rdma$'
	if stage install cmake --install "$root/build" --prefix "$prefix"; then
		stage consumer-cmake consumer_cmake
		stage consumer-pkgconfig consumer_pkgconfig
	else
		skip consumer-cmake "install failed"
		skip consumer-pkgconfig "install failed"
	fi
else
	for s in ctest install consumer-cmake consumer-pkgconfig; do
		skip "$s" "build failed"
	done
fi

stage release-build build "$root/build-release" Release

if stage asan-build build "$root/build-asan" Debug -DMUON_SANITIZE=ON; then
	MUON_ITEST_SCALE=50 stage asan-ctest run_ctest "$root/build-asan" -LE '^rdma$'
else
	skip asan-ctest "asan-build failed"
fi

# Fuzz the whole receive path and the discovery codec for a bounded time
# each; the corpus grows in a scratch copy so the tree stays clean. A crash
# leaves its input in build-fuzz/ (libFuzzer prints the file name).
fuzz_one() { # fuzz_one DIR TARGET CORPUS_DIR
	local dir=$1 target=$2 corpus
	corpus=$(mktemp -d "${TMPDIR:-/tmp}/muon-fuzz.XXXXXX")
	cp "$3"/* "$corpus"/
	# A small ASan quarantine: with the default 256 MiB, allocator churn
	# from per-frame copies pushed RSS past libFuzzer's 2 GiB limit while
	# the live heap stayed ~26 MiB (measured); 16 MiB keeps it near 190.
	(cd "$dir" && ASAN_OPTIONS=quarantine_size_mb=16 \
		"./test/fuzz/$target" -max_total_time=60 \
		-rss_limit_mb=4096 -print_final_stats=1 "$corpus")
	local rc=$?
	rm -rf "$corpus"
	return "$rc"
}
fuzz() {
	local dir=$root/build-fuzz rc=0
	CC=clang cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Debug \
		-DMUON_FUZZ=ON -DMUON_BUILD_TESTS=OFF &&
		cmake --build "$dir" -j"$jobs" --target muon-fuzz-conn \
			muon-fuzz-disc || return
	# Both run even if the first fails: they test unrelated code.
	fuzz_one "$dir" muon-fuzz-conn "$root/test/fuzz/corpus" || rc=$?
	fuzz_one "$dir" muon-fuzz-disc "$root/test/fuzz/corpus-disc" || rc=$?
	return "$rc"
}
stage fuzz fuzz

# test/rdma/run-vm.sh -d DIR -- COMMAND... boots a QEMU guest with a
# Soft-RoCE device, DIR shared read-write, runs COMMAND there and exits with
# its status (125 if the guest itself failed).
if [[ ! -f test/rdma/run-vm.sh ]]; then
	skip rdma "test/rdma/run-vm.sh does not exist yet"
elif ((!built)); then
	skip rdma "build failed"
else
	before=$fatal
	# One boot: every rdma test on the release build, then the in-process
	# verbs tests and the garbage-writing peer again under ASan and UBSan
	# (when that build exists), so out-of-bounds reads of a hostile ring
	# cannot pass unnoticed.
	asan_rdma=:
	if [[ -x $root/build-asan/test/unit/muon-unit-flow ]]; then
		asan_rdma="MUON_ITEST_SCALE=50 ctest --test-dir '$root/build-asan' --output-on-failure --no-tests=error -L '^rdma\$' -R '^(unit\\.|rdma\\.rogue)'"
	fi
	stage rdma run_logged "$prefix/ctest-rdma.log" sh test/rdma/run-vm.sh -d "$root" -- sh -c "
		ctest --test-dir '$root/build' --output-on-failure --no-tests=error -L '^rdma\$'; a=\$?
		$asan_rdma; b=\$?
		[ \$a = 0 ] && [ \$b = 0 ]"
	if [[ -z ${CI:-} && $fatal != "$before" ]]; then
		results+=("          (rdma failed: not fatal because CI is not set)")
		fatal=$before
	fi
fi

# ---------------------------------------------------------------- summary
echo
echo "=== test-all: summary"
printf '%s\n' "${results[@]}"
for log in "${ctest_logs[@]}"; do
	[[ -s $log ]] || continue
	digest=$(failed_tests "$log")
	[[ -n $digest ]] || continue
	echo "test-all: failed tests, with the end of their output:"
	echo "$digest"
done
if ((skipped > 0)); then
	echo "test-all: $passed passed, $failed failed, $skipped skipped"
else
	echo "test-all: $passed passed, $failed failed"
fi
exit "$fatal"
