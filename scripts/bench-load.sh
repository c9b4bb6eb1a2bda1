#!/usr/bin/env bash
# Load benchmark (issue 7; `task bench:load`). Builds the release binary,
# seeds a temporary database with the CLI, logs in with curl and drives, in
# the same run and with the same wrk settings (1-3 in turn, slice by slice,
# so a drift in the machine's speed falls on all three alike):
#   1. an allowed htmx panel request (a member of a granted group),
#   2. the same panel for a logged-in outsider (403 fragment),
#   3. a bare net/http handler writing the allowed panel's bytes, with no
#      session, check or render (internal/benchtool), and the same handler
#      with Gatehouse's response headers and server timeouts (what net/http
#      itself spends on those, apart from Gatehouse's own work),
#   4. the allowed panel again while 64 connections flood POST /login with
#      the real argon2id parameters: once with wrk as fast as it goes, once
#      at a steady rate with vegeta (latency without the saturation),
# and prints rps, p50 and p99 for each with the ratios to the bare handler,
# plus cold start to /healthz, idle RSS, peak RSS and the binary's size,
# and the server's own CPU time per request (steady when the machine is
# shared, where rps is not).
#
# Needs wrk (Debian: apt-get install -y wrk); vegeta is a Go tool in go.mod.
# Knobs (environment):
#   BENCH_DURATION  per run, in whole seconds (default 15s)
#   BENCH_SLICES    runs 1-3 take turns in this many slices of
#                   BENCH_DURATION/BENCH_SLICES each (default 3); rps is over
#                   all slices, p50 and p99 are the median slice's, and the
#                   worst slice's p99 is printed too
#   BENCH_CONNS     connections for the panel runs (default 32)
#   BENCH_THREADS   wrk threads (default 1: on a 2-core machine shared with
#                   the server, one wrk thread drives even the bare handler
#                   to the same rps as two, while a second thread only
#                   competes with the server for CPU and doubles the bare
#                   handler's own p99; see BENCHMARKS.md)
#   BENCH_RATE      requests/s of the steady panel load during the second
#                   login flood (default 1000, some 30 times what a few
#                   hundred viewers with ten panels every 30 s ask for)
#   BENCH_PANEL     the panel URL path (default /dashboards/finance/panels/burn-and-runway,
#                   a demo panel that reads no database, so the run measures
#                   the gate; /dashboards/access/panels/groups adds a query)
#   BENCH_PORT      first of three free ports (default 18080)
#   BENCH_DB        a postgres:// DSN of an empty database: measure on
#                   PostgreSQL instead of a temporary SQLite file
#   BENCH_SERVE_FLAGS  extra flags for the load server, e.g.
#                   "--metrics-addr 127.0.0.1:19090" to measure what metrics cost
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_DURATION:-15s}
slices=${BENCH_SLICES:-3}
case $duration in
  *[!0-9]*s | s | *[!0-9s]*) echo "bench-load: BENCH_DURATION must be whole seconds, like 15s" >&2; exit 1 ;;
esac
slice="$(( ${duration%s} / slices > 0 ? ${duration%s} / slices : 1 ))s"
conns=${BENCH_CONNS:-32}
rate=${BENCH_RATE:-1000}
threads=${BENCH_THREADS:-1}
panel=${BENCH_PANEL:-/dashboards/finance/panels/burn-and-runway}
port=${BENCH_PORT:-18080}
app="http://127.0.0.1:$port"
bare="http://127.0.0.1:$((port + 1))"
hdrs="http://127.0.0.1:$((port + 2))"
password="bench load password 7"

if ! command -v wrk >/dev/null; then
  echo "bench-load: wrk is not installed (Debian: apt-get install -y wrk)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
server_pid=""
bare_pid=""
hdrs_pid=""
stop_pid() { # stop_pid PID: SIGTERM, then wait until it is gone
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  stop_pid "$server_pid"
  stop_pid "$bare_pid"
  stop_pid "$hdrs_pid"
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "--- building the release binary (CGO_ENABLED=0, -trimpath, -s -w)"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/gatehouse" .
go build -o "$work/benchtool" ./internal/benchtool
go build -o "$work/vegeta" github.com/tsenart/vegeta/v12 # a tool in go.mod
size_mb=$(awk -v b="$(stat -c %s "$work/gatehouse")" 'BEGIN{printf "%.1f", b/1048576}')

# dbflag: where every command and the server keep their data.
if [ -n "${BENCH_DB:-}" ]; then dbflag=(--db "$BENCH_DB"); else dbflag=(--data "$work/data"); fi
ghcli() { "$work/gatehouse" "$@" "${dbflag[@]}" >/dev/null; }

# start_server [FLAG...]: start `gatehouse serve`, set server_pid and
# started_ms (the milliseconds until /healthz answered 200).
start_server() {
  if curl -s -o /dev/null "$app/healthz"; then
    echo "bench-load: something already listens on port $port; set BENCH_PORT" >&2
    exit 1
  fi
  "$work/benchtool" coldstart "$app/healthz" "$work/gatehouse" serve --addr "127.0.0.1:$port" \
    "${dbflag[@]}" "$@" >"$work/coldstart.out" 2>>"$work/server.log"
  read -r started_ms server_pid <"$work/coldstart.out"
}

echo "--- cold start, first run on an empty data directory (migrations, keys)"
start_server
first_ms=$started_ms
stop_pid "$server_pid"

echo "--- seeding with the CLI: a member of 'bench' (granted finance and access) and an outsider"
printf '%s\n' "$password" | ghcli users create bench-member@example.com --password-stdin
printf '%s\n' "$password" | ghcli users create bench-outsider@example.com --password-stdin
ghcli groups create bench
ghcli groups add-member bench bench-member@example.com
ghcli grants add access bench
ghcli grants add finance bench --demo # finance is a demo dashboard; serve --demo runs later

echo "--- cold start, restarts on the seeded database (3 runs)"
cold=()
for i in 1 2 3; do
  start_server
  cold+=("$started_ms")
  if [ "$i" = 3 ]; then
    sleep 1
    idle_rss=$("$work/benchtool" mem "$server_pid" | cut -d' ' -f1)
  fi
  stop_pid "$server_pid"
done
echo "--- starting the server for the load runs (with --demo, for its panels)"
# shellcheck disable=SC2086 # BENCH_SERVE_FLAGS is a list of flags
start_server --demo ${BENCH_SERVE_FLAGS:-}
sleep 1
idle_rss_demo=$("$work/benchtool" mem "$server_pid" | cut -d' ' -f1)

# login EMAIL: log in with curl and print the session cookie as NAME=VALUE.
login() {
  local jar="$work/$1.jar" code
  code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" --data-urlencode "email=$1" \
    --data-urlencode "password=$password" "$app/login")
  [ "$code" = 303 ] || { echo "bench-load: login as $1 answered $code" >&2; exit 1; }
  awk '$6 ~ /gatehouse_session$/ {print $6 "=" $7}' "$jar"
}
member=$(login bench-member@example.com)
outsider=$(login bench-outsider@example.com)

# expect STATUS COOKIE FILE: fetch the panel as htmx, check the status, keep the body.
expect() {
  local code
  code=$(curl -s -o "$3" -w '%{http_code}' -H 'HX-Request: true' -H "Cookie: $2" "$app$panel")
  [ "$code" = "$1" ] || { echo "bench-load: $panel answered $code, want $1" >&2; exit 1; }
}
expect 200 "$member" "$work/allowed.html"
expect 403 "$outsider" "$work/denied.html"
grep -q "You cannot view this dashboard" "$work/denied.html"

# run NAME URL [wrk args...]: one wrk run of $slice (RUN_FOR overrides), its
# output added to $work/NAME.*.txt.
run() {
  local name=$1 url=$2 n=1 pid=$server_pid t0
  shift 2
  while [ -e "$work/$name.$n.txt" ]; do n=$((n + 1)); done
  [ "$name" != bare ] || pid=$bare_pid
  [ "$name" != bare+headers ] || pid=$hdrs_pid
  t0=$(cputicks "$pid")
  wrk -t"$threads" -c"$conns" -d"${RUN_FOR:-$slice}" --latency "$@" "$url" >"$work/$name.$n.txt"
  echo "$(( $(cputicks "$pid") - t0 ))" >"$work/$name.$n.cpu"
}
# cputicks PID: the CPU time (user + system, in clock ticks) PID has used.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# cpu NAME: the server's CPU microseconds per request over NAME's runs:
# unlike rps, this hardly moves when other work shares the machine.
cpu() {
  local ticks
  ticks=$(cat "$work/$1".*.cpu | awk '{s += $1} END {print s}')
  awk -v t="$ticks" -v n="$(wrkstat "$1" requests)" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", t * 1e6 / hz / n}'
}
# wrkstat NAME rps|p50|p99|worst99|non2xx|requests: one number over NAME's
# runs (scripts/wrkstat.awk).
wrkstat() { awk -v want="$2" -f scripts/wrkstat.awk "$work/$1".*.txt; }

echo "--- bare net/http handler writing the allowed panel's $(stat -c %s "$work/allowed.html") bytes, started"
"$work/benchtool" bare "127.0.0.1:$((port + 1))" "$work/allowed.html" 2>>"$work/bare.log" &
bare_pid=$!
"$work/benchtool" headers "127.0.0.1:$((port + 2))" "$work/allowed.html" 2>>"$work/bare.log" &
hdrs_pid=$!
for _ in $(seq 200); do curl -sf -o /dev/null "$bare/" && curl -sf -o /dev/null "$hdrs/" && break; sleep 0.02; done
echo "--- $slices x ($slice allowed panel $panel, $slice denied panel as a logged-in outsider, $slice bare handler, $slice bare handler with Gatehouse's headers and timeouts): $conns connections"
for _ in $(seq "$slices"); do
  run allowed "$app$panel" -H 'HX-Request: true' -H "Cookie: $member"
  run denied "$app$panel" -H 'HX-Request: true' -H "Cookie: $outsider"
  run bare "$bare$panel" -H 'HX-Request: true'
  run bare+headers "$hdrs$panel" -H 'HX-Request: true'
done
stop_pid "$bare_pid"
stop_pid "$hdrs_pid"
bare_pid=""
hdrs_pid=""

echo "--- allowed panel during a flood of 64 concurrent logins (real argon2id): wrk, as fast as it goes"
cat >"$work/login.lua" <<EOF
wrk.method = "POST"
wrk.body = "email=bench-member%40example.com&password=$(printf '%s' "$password" | sed 's/ /+/g')"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
EOF
flood() { wrk -t1 -c64 -d"$duration" -s "$work/login.lua" "$app/login" >"$work/$1.1.txt"; }
flood flood &
flood_pid=$!
RUN_FOR=$duration run during-flood "$app$panel" -H 'HX-Request: true' -H "Cookie: $member"
wait "$flood_pid"
echo "--- allowed panel during a second flood: vegeta at a steady $rate requests/s"
flood flood2 &
flood_pid=$!
echo "GET $app$panel" | "$work/vegeta" attack -rate="$rate" -duration="$duration" -workers="$conns" \
  -max-workers="$conns" -header 'HX-Request: true' -header "Cookie: $member" >"$work/steady.bin"
wait "$flood_pid"
"$work/vegeta" report -type=json <"$work/steady.bin" >"$work/steady.json"
# steady p50|p99|ok: from vegeta's JSON report, latencies in ms.
steady() {
  case $1 in
    p50) key='"50th"' ;;
    p99) key='"99th"' ;;
    ok) key='"200"' ;;
  esac
  grep -o "$key:[0-9.]*" "$work/steady.json" | head -n 1 | cut -d: -f2 |
    awk -v k="$1" '{ if (k == "ok") printf "%d", $1; else printf "%.2f", $1 / 1e6 }'
}
read -r _ peak_rss < <("$work/benchtool" mem "$server_pid")
sleep 2
after_rss=$("$work/benchtool" mem "$server_pid" | cut -d' ' -f1)

for name in allowed denied bare bare+headers during-flood; do
  if [ "$name" != denied ] && [ "$(wrkstat $name non2xx)" != 0 ]; then
    echo "bench-load: the $name run had $(wrkstat $name non2xx) non-2xx answers" >&2
    exit 1
  fi
done
# wrk closing its connections at the end of a run cancels requests in
# flight ("context canceled"); any other error is worth a look.
errors=$(grep 'level=ERROR' "$work/server.log" | grep -v -e 'context canceled' -e 'level=ERROR msg=request ' || true)
if [ -n "$errors" ]; then
  echo "note: the server logged errors:" >&2
  printf '%s\n' "$errors" | awk 'NR <= 5' >&2
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.0f%%", 100 * a / b}'; }
logins=$(wrkstat flood requests)
busy=$(wrkstat flood non2xx)
printf '\n%-26s %9s %9s %9s %9s %11s %12s\n' "run ($conns conns, ${threads}t)" rps p50_ms p99_ms "vs bare" "worst p99" "cpu_us/req"
for name in allowed denied bare bare+headers during-flood; do
  printf '%-26s %9s %9s %9s %9s %11s %12s\n' "$name" "$(wrkstat $name rps)" "$(wrkstat $name p50)" "$(wrkstat $name p99)" \
    "$(ratio "$(wrkstat $name rps)" "$(wrkstat bare rps)")" "$(wrkstat $name worst99)" "$(cpu $name)"
done
echo "(allowed, denied, bare, bare+headers: $slices interleaved slices of $slice; p50/p99 of the median slice;"
echo " bare+headers: the bare handler plus Gatehouse's response headers and server timeouts;"
echo " cpu_us/req: the server's own CPU time per answered request, during-flood including the logins)"
cat <<EOF

steady $rate/s during flood  p50 $(steady p50) ms, p99 $(steady p99) ms, $(steady ok) of $(( rate * ${duration%s} )) answered 200   (target p99 < 50)
login flood: $logins POST /login answered in $duration ($((logins - busy)) logged in, $busy refused busy with 503)
peak RSS (VmHWM, whole run):   $peak_rss MiB   (target < 256)
idle RSS after start:          $idle_rss MiB   (target < 40); $idle_rss_demo MiB with --demo
idle RSS after the load:       $after_rss MiB
cold start to /healthz:        ${cold[*]} ms on restart; $first_ms ms first run (target < 150)
static binary:                 $size_mb MiB   (target < 30)
server: $(if [ -n "${BENCH_DB:-}" ]; then echo PostgreSQL; else echo SQLite; fi)${BENCH_SERVE_FLAGS:+, with $BENCH_SERVE_FLAGS}
machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)
EOF
