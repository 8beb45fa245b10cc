#!/bin/sh
# unit.muond_cli: muond's command line and configuration file, and a
# start and clean stop on SIGTERM.  usage: test_cli.sh PATH/TO/muond
set -u
MUOND=$1
T=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect STATUS PATTERN ARGS...: exit status and a line of stderr+stdout
expect() {
	want=$1 pat=$2
	shift 2
	"$MUOND" "$@" >"$T/out" 2>&1
	got=$?
	[ "$got" = "$want" ] || { cat "$T/out" >&2; fail "muond $*: exit $got, want $want"; }
	grep -q -- "$pat" "$T/out" || { cat "$T/out" >&2; fail "muond $*: no '$pat'"; }
}

expect 0 '^muond [0-9]' --version
expect 0 '--max-publications-per-session' --help
expect 0 '--idle-timeout-ms' --help
expect 2 "unknown option '--bogus'" --bogus
expect 2 "needs a value" --lease-ms
expect 2 "unexpected argument" extra
expect 2 "--lease-ms: 'abc' is not a number" --lease-ms abc
expect 2 "--lease-ms: '5' is outside" --lease-ms 5
expect 2 "--log-level: 'loud'" --log-level loud
expect 2 "--max-output: '3Q'" --max-output 3Q
expect 2 "--listen: 'udp://x:1'" --listen udp://x:1
expect 2 "--listen: 'h:99999'" --listen h:99999
expect 2 "missing.conf" --config "$T/missing.conf"

cat >"$T/bad1.conf" <<'CONF'
# a comment
[muond]
lease_ms = 3000
frobnicate = 1
CONF
expect 2 "bad1.conf:4: unknown key 'frobnicate'" --config "$T/bad1.conf"

cat >"$T/bad2.conf" <<'CONF'
[muond]

max_frame = 12
CONF
expect 2 "bad2.conf:3: key 'max_frame': '12' is outside" --config "$T/bad2.conf"

cat >"$T/bad3.conf" <<'CONF'
[other]
lease_ms = 3000
CONF
expect 2 "bad3.conf:2: key 'lease_ms' outside section \[muond\]" --config "$T/bad3.conf"

cat >"$T/bad4.conf" <<'CONF'
[muond]
this line is not a key
CONF
expect 2 "bad4.conf:2:" --config "$T/bad4.conf"

# A good file, with a flag overriding its listen address; the port is read
# from stdout as the integration tests do.
cat >"$T/good.conf" <<'CONF'
[muond]
listen = tcp://192.0.2.77:1   ; overridden below
name = cli-test
lease_ms = 2000
log_level = debug
syslog = no
max_output = 1M
CONF
"$MUOND" --config "$T/good.conf" --listen 127.0.0.1:0 >"$T/out" 2>"$T/err" &
PID=$!
i=0
while ! grep -q '^listening ' "$T/out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { cat "$T/err" >&2; fail "no 'listening' line"; }
	sleep 0.05
done
grep -q '^listening tcp://127\.0\.0\.1:[1-9][0-9]*$' "$T/out" || fail "bad listening line: $(cat "$T/out")"
[ "$(wc -l <"$T/out")" -eq 1 ] || fail "stdout has more than the listening line"
grep -q 'WARN: no secret file' "$T/err" || fail "no warning about the missing secret"
kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
[ "$rc" = 0 ] || { cat "$T/err" >&2; fail "exit $rc after SIGTERM"; }
grep -q 'shutting down' "$T/err" || fail "no shutdown line"

# A secret readable by others is refused: cannot start, exit 1.
printf '0123456789abcdef0123' >"$T/secret"
chmod 644 "$T/secret"
expect 1 "chmod 600" --secret-file "$T/secret" --listen 127.0.0.1:0
echo "muond_cli: ok"
