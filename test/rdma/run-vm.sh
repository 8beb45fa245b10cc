#!/bin/sh
# run-vm.sh: run one command inside a disposable QEMU guest that has a
# Soft-RoCE device (rdma_rxe "rxe0" on a dummy netdev, 192.0.2.1/24 and
# 2001:db8::1/64).
#
#   test/rdma/run-vm.sh [-d RW_DIR] [-m MEM_MB] [-t TIMEOUT_S] [-e NAME=VALUE]... -- COMMAND...
#
# The guest sees the host's root file system read-only (9p), with fresh tmpfs
# on /tmp, /run and /dev/shm, and RW_DIR (default: the current directory)
# read-write at the same path. COMMAND runs as root in the host's current
# directory; its exit status becomes ours. Exit 125: the guest could not boot,
# could not set up rxe0, or did not finish within TIMEOUT_S (default 1200).
# The guest has no network interface to the outside (-nic none).
#
# The kernel is Debian's linux-image-amd64, unpacked (never installed); the
# kernel and the busybox initramfs are cached in
#   ${MUON_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/muon-rxe-vm}/<kernel-version>/
# Environment: MUON_VM_CACHE, MUON_VM_KERNEL_DEB (a linux-image .deb to use
# instead of downloading one), MUON_VM_SMP (guest CPUs, default 2).
# See docs/rdma-vm.md.
set -eu

# Bump when the initramfs layout, init script or module list changes: cached
# images with another stamp are rebuilt.
IMAGE_VERSION=1
MODULES="crc32_generic virtio_pci 9pnet_virtio 9p dummy rdma_rxe rdma_ucm"

me=run-vm
PATH=$PATH:/usr/sbin:/sbin
export PATH

say() { printf '%s: %s\n' "$me" "$*" >&2; }
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 125; }
usage() {
	cat >&2 <<-EOF
	usage: $0 [-d RW_DIR] [-m MEM_MB] [-t TIMEOUT_S] [-e NAME=VALUE]... -- COMMAND...
	  -d RW_DIR     host directory shared read-write at the same path (default: .)
	  -m MEM_MB     guest memory (default 2048)
	  -t TIMEOUT_S  give up after this many seconds, exit 125 (default 1200)
	  -e NAME=VALUE export a variable to COMMAND in the guest (repeatable)
	EOF
	exit 2
}

# Single-quote a word for a POSIX shell.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

rw=$(pwd -P)
mem=2048
tmo=1200
envs=
while [ $# -gt 0 ]; do
	case $1 in
	-d) [ $# -ge 2 ] || usage
	    [ -d "$2" ] || die "-d $2: no such directory"
	    rw=$(cd "$2" && pwd -P); shift 2 ;;
	-m) [ $# -ge 2 ] || usage; mem=$2; shift 2 ;;
	-t) [ $# -ge 2 ] || usage; tmo=$2; shift 2 ;;
	-e) [ $# -ge 2 ] || usage
	    case ${2%%=*} in ''|[0-9]*|*[!A-Za-z0-9_]*) die "-e wants NAME=VALUE, got '$2'" ;; esac
	    case $2 in *=*) ;; *) die "-e wants NAME=VALUE, got '$2'" ;; esac
	    envs="$envs export ${2%%=*}=$(quote "${2#*=}");"; shift 2 ;;
	-h|--help) usage ;;
	--) shift; break ;;
	-*) usage ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || usage
case $mem in ''|*[!0-9]*) die "-m wants a number of MiB, got '$mem'" ;; esac
case $tmo in ''|*[!0-9]*) die "-t wants a number of seconds, got '$tmo'" ;; esac
smp=${MUON_VM_SMP:-2}
case $smp in ''|*[!0-9]*) die "MUON_VM_SMP wants a number of CPUs, got '$smp'" ;; esac
cwd=$(pwd -P)
nl='
'
case $rw$cwd in *"$nl"*) die "paths with newlines are not supported" ;; esac

# The guest has its own empty /tmp, /run and /dev/shm: a host path there is
# invisible unless it lies in RW_DIR (e.g. ctest --test-dir /tmp/build would
# find no tests).
for a in "$cwd" "$@"; do
	case $a in
	/tmp|/tmp/*|/run|/run/*|/dev/shm|/dev/shm/*)
		case $a/ in "$rw"/*) ;; *)
			say "warning: $a is not visible in the guest (it has its own /tmp, /run, /dev/shm): share it with -d" ;;
		esac ;;
	esac
done

# ------------------------------------------------------------- host tools
need() { # command package
	command -v "$1" >/dev/null 2>&1 ||
		die "'$1' not found: install the Debian package '$2' (scripts/setup.sh installs everything the VM needs)"
}
need qemu-system-x86_64 qemu-system-x86
need modprobe kmod
need depmod kmod
need cpio cpio
need gzip gzip
need timeout coreutils
need ip iproute2      # run inside the guest from the host's root
need rdma iproute2
[ -x /bin/busybox ] ||
	die "/bin/busybox not found: install the Debian package 'busybox-static'"
if ! LC_ALL=C ldd /bin/busybox 2>&1 | grep -q 'not a dynamic executable'; then
	die "/bin/busybox is dynamically linked: install the Debian package 'busybox-static' (not 'busybox')"
fi
ls /usr/lib/*/libibverbs/librxe-rdmav*.so >/dev/null 2>&1 ||
	say "warning: the rxe verbs provider is missing (Debian package 'ibverbs-providers'): verbs programs will not find rxe0"

# ------------------------------------------------------------- kernel + initramfs cache
cache=${MUON_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/muon-rxe-vm}
stamp="muon-rxe-vm image $IMAGE_VERSION; modules: $MODULES"
mkdir -p "$cache" || die "cannot create the cache directory $cache"

cache_ok() { # dir
	[ -s "$1/vmlinuz" ] && [ -s "$1/initrd.gz" ] && [ -f "$1/stamp" ] &&
		[ "$(cat "$1/stamp")" = "$stamp" ]
}

# Unpack the kernel package $1 (a .deb) and build $cache/<kver>/.
build_image() {
	b=$(mktemp -d "$cache/.build.XXXXXX")
	say "building the guest kernel + initramfs in $b"
	dpkg-deb -x "$1" "$b/kroot" || { rm -rf "$b"; die "cannot unpack $1"; }
	kv=$(ls "$b/kroot/lib/modules" | head -n 1)
	[ -n "$kv" ] && [ -f "$b/kroot/boot/vmlinuz-$kv" ] ||
		{ rm -rf "$b"; die "$1 holds no kernel (boot/vmlinuz-*, lib/modules/*)"; }
	depmod -b "$b/kroot" "$kv"
	mkdir -p "$b/root/bin" "$b/root/mods"
	: > "$b/root/mods/order"
	for m in $MODULES; do
		deps=$(modprobe -d "$b/kroot" -S "$kv" --show-depends "$m" 2>&1) ||
			{ rm -rf "$b"; die "kernel $kv has no module $m: $deps"; }
		# "insmod /path/x.ko [params]" lines, dependencies first; builtins are skipped.
		printf '%s\n' "$deps" | awk '$1 == "insmod" { print $2 }' | while read -r p; do
			f=$(basename "$p")
			grep -q "^$f\$" "$b/root/mods/order" && continue
			cp "$p" "$b/root/mods/$f"
			echo "$f" >> "$b/root/mods/order"
		done
	done
	cp /bin/busybox "$b/root/bin/busybox"
	write_init > "$b/root/init"
	chmod 755 "$b/root/init"
	(cd "$b/root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -6) > "$b/initrd.gz"
	mkdir -p "$cache/$kv"
	# Renames are atomic: a concurrent run sees the old or the new file.
	mv -f "$b/kroot/boot/vmlinuz-$kv" "$cache/$kv/vmlinuz"
	mv -f "$b/initrd.gz" "$cache/$kv/initrd.gz"
	cp "$b/root/mods/order" "$cache/$kv/modules"
	printf '%s\n' "$stamp" > "$b/stamp" && mv -f "$b/stamp" "$cache/$kv/stamp"
	rm -rf "$b"
	say "cached $cache/$kv ($(du -sh "$cache/$kv" | cut -f1))"
	img=$cache/$kv
}

# /init of the initramfs (busybox). Mounts the host root read-only over 9p,
# the per-run control directory and RW_DIR, then runs the per-run guest
# script chrooted into the host root, and powers off.
write_init() {
	cat <<-'EOF'
	#!/bin/busybox sh
	/bin/busybox --install -s /bin
	export PATH=/bin
	mkdir -p /proc /sys /dev /host
	mount -t proc proc /proc
	mount -t sysfs sys /sys
	mount -t devtmpfs dev /dev
	off() { sync; poweroff -f; sleep 30; }
	fail() { echo "muon-vm: error: $*"; off; }
	while read -r m; do
		case $m in dummy.ko*) a=numdummies=0 ;; *) a= ;; esac
		insmod "/mods/$m" $a || echo "muon-vm: error: insmod $m failed"
	done < /mods/order
	p9=trans=virtio,version=9p2000.L,msize=512000
	mount -t 9p -o $p9,ro hostroot /host ||
		fail "cannot mount the host root over 9p (virtio-9p: modules 9p/9pnet_virtio, qemu -virtfs)"
	mount -t tmpfs -o mode=1777 tmp /host/tmp
	mount -t tmpfs -o mode=755 run /host/run
	mount -t proc proc /host/proc
	mount -t sysfs sys /host/sys
	mount -t devtmpfs dev /host/dev
	mkdir -p /host/dev/shm /host/dev/pts /host/run/muon-vm
	mount -t tmpfs -o mode=1777 shm /host/dev/shm
	mount -t devpts devpts /host/dev/pts
	mount -t 9p -o $p9 muonctl /host/run/muon-vm ||
		fail "cannot mount the control directory over 9p"
	read -r rw < /host/run/muon-vm/rw-dir
	mkdir -p "/host$rw" 2>/dev/null
	mount -t 9p -o $p9 rwdir "/host$rw" ||
		fail "cannot mount the read-write directory $rw over 9p"
	chroot /host /bin/sh /run/muon-vm/guest.sh
	off
	EOF
}

img=
if [ -n "${MUON_VM_KERNEL_DEB:-}" ]; then
	[ -f "$MUON_VM_KERNEL_DEB" ] || die "MUON_VM_KERNEL_DEB=$MUON_VM_KERNEL_DEB: no such file"
	kv=$(dpkg-deb -f "$MUON_VM_KERNEL_DEB" Package | sed 's/^linux-image-//; s/-unsigned$//')
	if cache_ok "$cache/$kv"; then img=$cache/$kv; else build_image "$MUON_VM_KERNEL_DEB"; fi
else
	# linux-image-amd64 (the meta package) -> linux-image-<kver>
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	if [ -n "$pkg" ]; then
		kv=${pkg#linux-image-}; kv=${kv%-unsigned}
		if cache_ok "$cache/$kv"; then
			img=$cache/$kv
		else
			dl=$(mktemp -d "$cache/.dl.XXXXXX")
			say "downloading $pkg (apt-get download)"
			# As root, apt would warn that its _apt sandbox user cannot write here.
			sb=; [ "$(id -u)" != 0 ] || sb="-o APT::Sandbox::User=root"
			# shellcheck disable=SC2086 # $sb is empty or two words
			if (cd "$dl" && apt-get download -q $sb "$pkg" >&2); then
				build_image "$dl"/*.deb
			fi
			rm -rf "$dl"
		fi
	fi
	if [ -z "$img" ]; then
		# Offline or no apt lists: fall back to any complete cached image.
		for d in $(ls -d "$cache"/*/ 2>/dev/null | sort -rV); do
			d=${d%/}
			if cache_ok "$d"; then img=$d; break; fi
		done
		if [ -z "$img" ]; then
			[ -n "$pkg" ] && die "cannot download $pkg (network? apt sources?) and no cached image in $cache"
			die "cannot resolve the Debian package linux-image-amd64: run 'apt-get update' (or set MUON_VM_KERNEL_DEB=/path/to/linux-image-*.deb)"
		fi
		say "using the cached image $img"
	fi
fi

# ------------------------------------------------------------- per-run files
# work/ is private to this run; work/ctl/ is shared with the guest (tag
# muonctl) and holds the guest script, the RW path and the exit status.
work=$(mktemp -d "${TMPDIR:-/tmp}/muon-vm.XXXXXX")
ctl=$work/ctl
mkdir "$ctl"
runner_pid=

# shellcheck disable=SC2317 # run from the traps
cleanup() {
	trap - EXIT INT TERM HUP
	if [ ! -f "$work/qemu.exit" ]; then
		for f in "$work/timeout.pid" "$work/qemu.pid"; do
			pid=$(cat "$f" 2>/dev/null) || continue
			[ -n "$pid" ] && kill "$pid" 2>/dev/null || :
		done
	fi
	if [ -n "$runner_pid" ]; then
		wait "$runner_pid" 2>/dev/null || :
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'say "interrupted: stopping the guest"; cleanup; exit 130' INT
trap 'say "terminated: stopping the guest"; cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP

printf '%s\n' "$rw" > "$ctl/rw-dir"
{
	cat <<-'EOF'
	#!/bin/sh
	# Generated by run-vm.sh; runs chrooted into the host root inside the guest.
	ctl=/run/muon-vm
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	export HOME=/tmp TMPDIR=/tmp LANG=C.UTF-8 MUON_VM_GUEST=1
	fail() { echo "muon-vm: error: $*"; echo "setup-error" > $ctl/status; exit 1; }
	hostname muon-vm 2>/dev/null
	ip link set lo up || fail "ip link set lo up failed"
	ip link add muonrxe0 type dummy ||
		fail "cannot create the dummy netdev (dummy.ko missing from the initramfs?)"
	ip addr add 192.0.2.1/24 dev muonrxe0 && ip link set muonrxe0 up ||
		fail "cannot configure 192.0.2.1/24 on muonrxe0"
	# IPv6 too (documentation prefix), for rdmacm over IPv6; no DAD wait.
	# Kept when a test takes the link down (rdma.linkdown), as IPv4 is.
	echo 1 > /proc/sys/net/ipv6/conf/all/keep_addr_on_down
	echo 1 > /proc/sys/net/ipv6/conf/muonrxe0/keep_addr_on_down
	ip -6 addr add 2001:db8::1/64 dev muonrxe0 nodad ||
		fail "cannot configure 2001:db8::1/64 on muonrxe0"
	if ! rdma link add rxe0 type rxe netdev muonrxe0; then
		fail "'rdma link add rxe0 type rxe netdev muonrxe0' failed (ENOENT means the crc32 crypto module, crc32_generic, was not loaded; see docs/rdma-vm.md)"
	fi
	n=0
	until grep -qs ACTIVE /sys/class/infiniband/rxe0/ports/1/state; do
		n=$((n + 1))
		[ $n -lt 100 ] || fail "rxe0 port 1 did not become ACTIVE"
		sleep 0.1
	done
	ulimit -l unlimited 2>/dev/null
	EOF
	printf '%s\n' "$envs"
	printf 'cd %s || fail "cannot enter %s in the guest (the guest has its own /tmp, /run and /dev/shm: share the directory with -d)"\n' \
		"$(quote "$cwd")" "$(printf '%s' "$cwd" | sed 's/["$`\\]/\\&/g')"
	printf 'set --'
	for a in "$@"; do printf ' %s' "$(quote "$a")"; done
	printf '\n'
	cat <<-'EOF'
	echo "muon-vm: rxe0 ready after $(cut -d' ' -f1 /proc/uptime) s of guest uptime; running: $*"
	("$@")
	rc=$?
	echo "exit $rc" > $ctl/status
	echo "muon-vm: command exited with status $rc"
	EOF
} > "$ctl/guest.sh"

# ------------------------------------------------------------- boot
say "booting $(basename "$img") (TCG, ${smp} CPUs, ${mem} MiB, timeout ${tmo} s), shared read-write: $rw"
start=$(date +%s)
# clocksource=tsc: the guest's default under TCG is HPET, which has no vDSO
# path, so every clock_gettime would be a ~2 us system call and distort
# both muon and its benchmarks; perftest reads the TSC directly anyway.
# The runner writes its own pid, then becomes `timeout`, which forwards
# signals to qemu. stdin is /dev/null: qemu must not touch the terminal.
(
	sh -c 'echo $$ > "$1"; shift; exec "$@"' sh "$work/timeout.pid" \
		timeout -k 10 "$tmo" qemu-system-x86_64 \
		-machine q35 -accel tcg -cpu max -smp "$smp" -m "$mem" \
		-nodefaults -display none -serial stdio -no-reboot -nic none \
		-pidfile "$work/qemu.pid" \
		-kernel "$img/vmlinuz" -initrd "$img/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1 clocksource=tsc tsc=reliable" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$(printf '%s' "$rw" | sed 's/,/,,/g'),mount_tag=rwdir,security_model=none,multidevs=remap" \
		-virtfs "local,path=$(printf '%s' "$ctl" | sed 's/,/,,/g'),mount_tag=muonctl,security_model=none" \
		< /dev/null 2>&1 && e=0 || e=$?
	echo "$e" > "$work/qemu.exit"
) | tee "$work/console.log" |
	sed -u -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' \
		-e '/^SeaBIOS (version/d' -e '/^Booting from ROM/d' -e '/reboot: Power down/d' &
runner_pid=$!
wait "$runner_pid" || :
runner_pid=
secs=$(( $(date +%s) - start ))

# ------------------------------------------------------------- verdict
status=$(cat "$ctl/status" 2>/dev/null || :)
qexit=$(cat "$work/qemu.exit" 2>/dev/null || echo '?')
case $status in
"exit "[0-9]*)
	rc=${status#exit }
	say "guest finished in ${secs} s, command exit status $rc"
	exit "$rc" ;;
esac
guest_error() {
	grep -a 'muon-vm: error:' "$work/console.log" | head -n 1 | tr -d '\r' | sed 's/.*muon-vm: error: //'
}
if [ "$status" = setup-error ]; then
	die "guest setup failed after ${secs} s: $(guest_error)"
fi
if [ "$qexit" = 124 ] || [ "$qexit" = 137 ]; then
	die "the guest did not finish within ${tmo} s (TCG is slow: raise -t); it was killed"
fi
if grep -q 'Kernel panic' "$work/console.log"; then
	die "the guest kernel panicked after ${secs} s: $(grep -a -m 1 -o 'Kernel panic.*' "$work/console.log" | tr -d '\r')"
fi
if grep -q 'muon-vm: error:' "$work/console.log"; then
	die "the guest could not boot: $(guest_error)"
fi
die "the guest did not finish (qemu exit status $qexit after ${secs} s); see the console output above"
