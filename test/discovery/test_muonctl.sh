#!/usr/bin/env bash
# integration.muonctl: muonctl against real muond processes.
#
#   test_muonctl.sh PATH/TO/muond PATH/TO/muonctl PATH/TO/muon-disc-client
#
# Two daemons, d1 and d2, get the same two publications from one context
# (same ctx id, registered with both, as a context does) and d1 one more;
# a client watches on d1. Then: every command in table and JSON form (the
# JSON checked by `python3 -m json.tool` and its content by a few lines of
# python), d2 killed (health shows it unreachable, exit 1, the rest still
# printed), a third daemon with a cluster secret (right, wrong and missing
# secret), and usage errors (exit 2).
set -u
MUOND=$1 CTL=$2 CLIENT=$3
T=$(mktemp -d "${TMPDIR:-/tmp}/muonctl-test.XXXXXX")
PIDS=()
# Set by start_daemon through printf -v.
ADDR_d1='' ADDR_d2='' ADDR_d3='' PID_d2=''
cleanup() {
	local p
	# Closing the fds ends the hold-stdin clients; daemons get SIGTERM.
	exec 4>&- 5>&- 6>&- 7>&-
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
step() { echo "--- $*"; }

# wait_for FILE PATTERN: up to 10 s for a line to appear.
wait_for() {
	local i
	for ((i = 0; i < 200; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	cat "$1" >&2
	fail "no '$2' in $1"
}

# start_daemon NAME [ARGS...]: sets ADDR_<NAME> and PID_<NAME>.
start_daemon() {
	local name=$1
	shift
	"$MUOND" --listen tcp://127.0.0.1:0 --name "$name" "$@" \
		>"$T/$name.out" 2>"$T/$name.err" &
	PIDS+=($!)
	printf -v "PID_$name" %s $!
	wait_for "$T/$name.out" '^listening tcp://'
	printf -v "ADDR_$name" %s "$(sed -n 's|^listening tcp://||p' \
		"$T/$name.out" | head -n 1)"
}

# client NAME FD ARGS...: a disc-client kept alive by fd FD (a fifo).
client() {
	local name=$1 fd=$2
	shift 2
	mkfifo "$T/$name.in"
	"$CLIENT" "$@" hold-stdin <"$T/$name.in" >"$T/$name.cout" \
		2>"$T/$name.cerr" &
	PIDS+=($!)
	eval "exec $fd>\"\$T/\$name.in\""
	wait_for "$T/$name.cout" '^HOLD stdin'
	grep -q '^ERROR' "$T/$name.cout" && fail "client $name: $(cat "$T/$name.cout")"
}

# ctl WANT_STATUS NAME ARGS...: run muonctl, output in $T/NAME.{out,err}.
ctl() {
	local want=$1 name=$2 got
	shift 2
	"$CTL" "$@" >"$T/$name.out" 2>"$T/$name.err"
	got=$?
	if [[ $got != "$want" ]]; then
		cat "$T/$name.out" "$T/$name.err" >&2
		fail "muonctl $*: exit $got, want $want"
	fi
	# Under ASan an error also exits 1: never let it pass as expected.
	if grep -Eq 'Sanitizer|runtime error:' "$T/$name.err"; then
		cat "$T/$name.err" >&2
		fail "muonctl $*: sanitizer report"
	fi
}

has() { # has NAME REGEX: a line of NAME's stdout matches
	grep -Eq -- "$2" "$T/$1.out" || {
		cat "$T/$1.out" >&2
		fail "$1: no line matching '$2'"
	}
}
has_err() {
	grep -Eq -- "$2" "$T/$1.err" || {
		cat "$T/$1.err" >&2
		fail "$1: stderr has no '$2'"
	}
}

# json NAME PYTHON [ARGS...]: valid JSON (json.tool), then PYTHON asserts
# on `d`, the document; ARGS are sys.argv[2:].
json() {
	local name=$1 code=$2
	shift 2
	python3 -m json.tool "$T/$name.out" >/dev/null ||
		fail "$name: not valid JSON: $(cat "$T/$name.out")"
	python3 -c "import json, sys
d = json.load(open(sys.argv[1]))
$code" "$T/$name.out" "$@" || fail "$name: JSON content: $(cat "$T/$name.out")"
}

step "daemons and clients"
start_daemon d1
start_daemon d2
CTX=0x00000000c0ffee01
client pub1 4 -d "$ADDR_d1" -c $CTX -n feed \
	register md.a 1 tcp://127.0.0.1:7001,shm://feed-a \
	register md.b 2 tcp://127.0.0.1:7002 \
	register md.only1 3 tcp://127.0.0.1:7003
client pub2 5 -d "$ADDR_d2" -c $CTX -n feed \
	register md.a 1 tcp://127.0.0.1:7001,shm://feed-a \
	register md.b 2 tcp://127.0.0.1:7002
client watch1 6 -d "$ADDR_d1" -n watcher watch md.a watch-prefix md.
BOTH="$ADDR_d1,$ADDR_d2"

step "health, table and JSON"
ctl 0 health --daemon "$BOTH" health
has health '^DAEMON +NAME +ID +VERSION'
has health "^$ADDR_d1 +d1 +[0-9a-f]{16} +0\.1\.0 "
has health "^$ADDR_d2 +d2 "
ctl 0 health-json --daemon "$BOTH" --json health
json health-json "
h = d['health']
assert d['command'] == 'health' and len(h) == 2
assert [x['daemon'] for x in h] == sys.argv[2].split(',')
assert all(x['ok'] for x in h)
assert h[0]['daemon_name'] == 'd1' and h[1]['daemon_name'] == 'd2'
assert h[0]['publications'] == 3 and h[1]['publications'] == 2
assert h[0]['watches'] == 2 and h[0]['lease_ms'] == 5000
assert len(h[0]['daemon_id']) == 16" "$BOTH"

step "topics"
ctl 0 topics --daemon "$BOTH" topics
has topics '^TOPIC +PUBLICATIONS +WATCHERS +DAEMONS$'
has topics '^md\.a +1 +[0-9]+ +2$'
has topics '^md\.b +1 +[0-9]+ +2$'
has topics '^md\.only1 +1 +[0-9]+ +1$'
ctl 0 topics-json --daemon "$BOTH" --json topics
json topics-json "
t = {x['topic']: x for x in d['topics']}
assert d['command'] == 'topics'
assert [x['ok'] for x in d['daemons']] == [True, True]
assert t['md.a']['publications'] == 1 and t['md.a']['daemons'] == 2
assert t['md.a']['watchers'] >= 1
assert t['md.only1']['daemons'] == 1
assert [x['topic'] for x in d['topics']] == sorted(t)"

step "publications, merged by (ctx_id, stream_id)"
ctl 0 pubs --daemon "$BOTH" publications
has pubs '^TOPIC +CTX_ID +STREAM +CONTEXT +HOST +LEASE_MS +DAEMONS +ENDPOINTS$'
has pubs '^md\.a +00000000c0ffee01 +1 +feed +[^ ]+ +[0-9]+ +2 +tcp://127\.0\.0\.1:7001,shm://feed-a$'
has pubs '^md\.b +00000000c0ffee01 +2 +feed .* 2 +tcp://127\.0\.0\.1:7002$'
has pubs '^md\.only1 +00000000c0ffee01 +3 +feed .* 1 +tcp://127\.0\.0\.1:7003$'
[[ $(grep -c c0ffee01 "$T/pubs.out") == 3 ]] || fail "pubs: not 3 rows"
ctl 0 pubs-topic --daemon "$BOTH" publications md.a
[[ $(grep -c c0ffee01 "$T/pubs-topic.out") == 1 ]] ||
	fail "publications md.a: $(cat "$T/pubs-topic.out")"
ctl 0 pubs-json --daemon "$BOTH" --json publications
json pubs-json "
p = {(x['ctx_id'], x['stream_id']): x for x in d['publications']}
assert len(p) == 3 and d['topic'] == ''
a = p[('00000000c0ffee01', 1)]
assert a['topic'] == 'md.a' and a['ctx_name'] == 'feed' and a['daemons'] == 2
assert a['endpoints'] == ['tcp://127.0.0.1:7001', 'shm://feed-a']
assert 0 < a['lease_left_ms'] <= 5000
assert p[('00000000c0ffee01', 3)]['daemons'] == 1"
ctl 0 pubs-topic-json --daemon "$BOTH" --json publications md.only1
json pubs-topic-json "
assert d['topic'] == 'md.only1'
assert [x['topic'] for x in d['publications']] == ['md.only1']"
ctl 0 pubs-none --daemon "$BOTH" --json publications no.such.topic
json pubs-none "assert d['publications'] == []"

step "watchers"
ctl 0 watchers --daemon "$BOTH" watchers
has watchers '^DAEMON +TOPIC +MATCH +UPDATES +CLIENT$'
has watchers "^$ADDR_d1 +md\\.a +exact +[0-9]+ +watcher [0-9a-f]+@127\\.0\\.0\\.1:[0-9]+$"
has watchers "^$ADDR_d1 +md\\. +prefix "
grep -q "^$ADDR_d2 " "$T/watchers.out" && fail "watchers: d2 has none"
ctl 0 watchers-json --daemon "$BOTH" --json watchers
json watchers-json "
w = d['watchers']
assert len(w) == 2 and all(x['daemon'] == sys.argv[2] for x in w)
assert {(x['topic'], x['prefix']) for x in w} == {('md.a', False), ('md.', True)}
assert all(x['client'].startswith('watcher ') for x in w)" "$ADDR_d1"

step "MUON_DISCOVERY as the default list"
MUON_DISCOVERY="$BOTH" ctl 0 env-health health
[[ $(grep -c '^127\.0\.0\.1:' "$T/env-health.out") == 2 ]] ||
	fail "MUON_DISCOVERY: $(cat "$T/env-health.out")"

step "d2 killed"
kill -KILL "$PID_d2"
{ wait "$PID_d2"; } 2>/dev/null # bash's "Killed" notice is expected
ctl 1 dead --daemon "$BOTH" health
has dead "^$ADDR_d1 +d1 "
has dead "^$ADDR_d2 +unreachable: connect: Connection refused$"
has_err dead "^muonctl: $ADDR_d2: unreachable: connect: Connection refused$"
grep -q "$ADDR_d1" "$T/dead.err" && fail "dead: d1 reported as failed"
ctl 1 dead-json --daemon "$BOTH" --json health
json dead-json "
h = d['health']
assert h[0]['ok'] and h[0]['daemon_name'] == 'd1'
assert not h[1]['ok'] and h[1]['error'].startswith('unreachable: ')
assert 'daemon_id' not in h[1]"
# What d1 knows is still printed.
ctl 1 dead-pubs --daemon "$BOTH" publications
has dead-pubs '^md\.a +00000000c0ffee01 +1 .* 1 +tcp://'
ctl 1 dead-pubs-json --daemon "$BOTH" --json publications
json dead-pubs-json "
assert [x['ok'] for x in d['daemons']] == [True, False]
assert d['daemons'][1]['error'].startswith('unreachable: ')
assert len(d['publications']) == 3"

step "cluster secret"
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/secret")
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/other")
start_daemon d3 --secret-file "$T/secret"
client pub3 7 -d "$ADDR_d3" -s "$T/secret" -c 0x77 -n sec register sec.a 9 shm://sec
ctl 0 sec-ok --daemon "$ADDR_d3" --secret-file "$T/secret" publications
has sec-ok '^sec\.a +0000000000000077 +9 +sec '
MUON_SECRET_FILE=$T/secret ctl 0 sec-env --daemon "$ADDR_d3" --json health
json sec-env "assert d['health'][0]['ok']"
ctl 1 sec-wrong --daemon "$ADDR_d3" --secret-file "$T/other" publications
has_err sec-wrong "^muonctl: $ADDR_d3: error: daemon error AUTH: "
grep -q sec.a "$T/sec-wrong.out" && fail "sec-wrong: publications shown"
ctl 1 sec-none --daemon "$ADDR_d3" health
has_err sec-none "^muonctl: $ADDR_d3: error: daemon error AUTH: .*--secret-file"
has sec-none "^$ADDR_d3 +error: daemon error AUTH"
# A secret against a daemon without one: it could not prove its answers.
ctl 1 sec-nodaemon --daemon "$ADDR_d1" --secret-file "$T/secret" topics
has_err sec-nodaemon "^muonctl: $ADDR_d1: error: the daemon has no cluster secret"
chmod 644 "$T/other"
ctl 1 sec-mode --daemon "$ADDR_d3" --secret-file "$T/other" health
has_err sec-mode 'chmod 600'

step "usage"
ctl 2 u1 --daemon "$ADDR_d1" frobnicate
has_err u1 "unknown command 'frobnicate'"
ctl 2 u2 --daemon "udp://x:1" health
ctl 2 u3 --daemon "h:99999" health
ctl 2 u4 --daemon "::1:7440" health
ctl 2 u5 --daemon "$ADDR_d1," health
ctl 2 u6 --timeout-ms 0 health
ctl 2 u7 --timeout-ms abc health
ctl 2 u8
ctl 2 u9 --bogus health
ctl 2 u10 topics extra
ctl 2 u11 publications "$(printf 't%.0s' {1..256})"
ctl 2 u12 health publications
ctl 0 v --version
has v '^muonctl [0-9]+\.[0-9]+\.[0-9]+ '
ctl 0 h --help
has h 'publications \[TOPIC\]'

step "IPv6 syntax"
# A bracketed IPv6 address is accepted; nothing listens on port 1.
ctl 1 v6 --daemon "[::1]:1" --timeout-ms 500 health
has_err v6 '^muonctl: \[::1\]:1: unreachable: '

for f in "$T"/*.err "$T"/*.cerr; do
	if grep -Eq 'Sanitizer|runtime error:' "$f"; then
		cat "$f" >&2
		fail "sanitizer report in $f"
	fi
done
echo "integration.muonctl: ok"
