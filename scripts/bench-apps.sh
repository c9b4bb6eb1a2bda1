#!/usr/bin/env bash
# App proxy benchmark (issue 26; `task bench:apps`). One small JSON upstream
# (internal/benchtool json) is driven with wrk, in the same run and with the
# same settings, taking turns slice by slice so a drift in the machine's
# speed falls on all alike:
#   direct     the upstream itself,
#   nginx      nginx `proxy_pass` with upstream keepalive (unprivileged: its
#              own prefix, pid, logs and temp paths in the work directory),
#   caddy      Caddy `reverse_proxy`, no auth,
#   goproxy    net/http/httputil's ReverseProxy alone (internal/benchtool
#              proxy: Gatehouse's transport and buffer pool, nothing else),
#              the floor for a Go proxy,
#   gatehouse  Gatehouse's app proxy at bench.localhost with a signed-in
#              app cookie (the handshake walked with curl): every request
#              decided, identity headers and the signed assertion set,
# and prints rps, p50, p99 and the worst slice's p99 for each, the ratios
# of Gatehouse to nginx and Caddy, and the proxy process's own CPU time per
# request (steadier than rps when the machine is shared).
#
# Needs wrk, nginx and caddy (Debian: apt-get install -y wrk nginx caddy).
# Knobs (environment):
#   BENCH_DURATION  per target, in whole seconds (default 15s)
#   BENCH_SLICES    slices each target's time is cut into (default 3); rps is
#                   over all slices, p50 and p99 are the median slice's
#   BENCH_CONNS     connections (default 32)
#   BENCH_THREADS   wrk threads (default 1, as scripts/bench-load.sh)
#   BENCH_PORT      first of five free ports (default 18180)
#   BENCH_SERVE_FLAGS  extra flags for gatehouse serve
#   BENCH_GATEHOUSE a gatehouse binary to measure instead of building this
#                   tree's (to compare a before and an after)
#
# To see where Gatehouse's time goes, profile the in-process benchmark:
#   go test ./app -run '^$' -bench 'AppsProxy/gatehouse' -cpuprofile cpu.out
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_DURATION:-15s}
slices=${BENCH_SLICES:-3}
case $duration in
  *[!0-9]*s | s | *[!0-9s]*) echo "bench-apps: BENCH_DURATION must be whole seconds, like 15s" >&2; exit 1 ;;
esac
slice="$(( ${duration%s} / slices > 0 ? ${duration%s} / slices : 1 ))s"
conns=${BENCH_CONNS:-32}
threads=${BENCH_THREADS:-1}
port=${BENCH_PORT:-18180}
up_port=$port nginx_port=$((port + 1)) caddy_port=$((port + 2)) gh_port=$((port + 3)) goproxy_port=$((port + 4))
password="bench apps password 7"

for tool in wrk nginx caddy curl; do
  if ! command -v "$tool" >/dev/null; then
    echo "bench-apps: $tool is not installed (Debian: apt-get install -y wrk nginx caddy curl)" >&2
    exit 1
  fi
done
for p in "$up_port" "$nginx_port" "$caddy_port" "$gh_port" "$goproxy_port"; do
  if curl -s -o /dev/null "http://127.0.0.1:$p/"; then
    echo "bench-apps: something already listens on port $p; set BENCH_PORT" >&2
    exit 1
  fi
done

work=$(mktemp -d /tmp/gatehouse-bench-apps.XXXXXX)
pids=()
stop_pid() { # stop_pid PID: SIGTERM, then wait until it is gone
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# wait_for URL: poll until URL answers (any status), for at most 30 s.
wait_for() {
  for _ in $(seq 600); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.05
  done
  echo "bench-apps: $1 did not answer within 30 s" >&2
  exit 1
}

echo "--- building the release binary and the JSON upstream"
if [ -n "${BENCH_GATEHOUSE:-}" ]; then
  cp "$BENCH_GATEHOUSE" "$work/gatehouse"
else
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/gatehouse" .
fi
go build -o "$work/benchtool" ./internal/benchtool

"$work/benchtool" json "127.0.0.1:$up_port" &
up_pid=$!
pids+=("$up_pid")
wait_for "http://127.0.0.1:$up_port/"

echo "--- nginx $(nginx -v 2>&1 | sed 's/.*\///'): proxy_pass with upstream keepalive"
mkdir -p "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  upstream app { server 127.0.0.1:$up_port; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
    }
  }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
nginx_pid=$!
pids+=("$nginx_pid")
wait_for "http://127.0.0.1:$nginx_port/"

echo "--- caddy $(caddy version | cut -d' ' -f1): reverse_proxy"
mkdir -p "$work/caddy"
cat >"$work/caddy/Caddyfile" <<EOF
{
  admin off
  auto_https off
  storage file_system $work/caddy/data
}
http://127.0.0.1:$caddy_port {
  reverse_proxy 127.0.0.1:$up_port
}
EOF
HOME="$work/caddy" XDG_DATA_HOME="$work/caddy" XDG_CONFIG_HOME="$work/caddy" \
  caddy run --config "$work/caddy/Caddyfile" --adapter caddyfile 2>"$work/caddy/log" &
caddy_pid=$!
pids+=("$caddy_pid")
wait_for "http://127.0.0.1:$caddy_port/"

"$work/benchtool" proxy "127.0.0.1:$goproxy_port" "http://127.0.0.1:$up_port" &
goproxy_pid=$!
pids+=("$goproxy_pid")
wait_for "http://127.0.0.1:$goproxy_port/"

echo "--- gatehouse: app 'bench' at bench.localhost:$gh_port, a member signed in"
gh() { "$work/gatehouse" "$@" --data "$work/data" >/dev/null; }
base="http://127.0.0.1:$gh_port"
gh migrate
gh apps add bench "http://127.0.0.1:$up_port" --title "Bench API" --base-url "$base"
printf '%s\n' "$password" | gh users create bench-member@example.com --password-stdin
gh groups create bench-viewers
gh groups add-member bench-viewers bench-member@example.com
gh grants add bench bench-viewers
"$work/gatehouse" serve --addr "127.0.0.1:$gh_port" --base-url "$base" --data "$work/data" \
  ${BENCH_SERVE_FLAGS:-} 2>"$work/gatehouse.log" &
gh_pid=$!
pids+=("$gh_pid")
wait_for "$base/healthz"

# The sign-in handshake, as a browser walks it: the app origin sends us to
# the main origin's sign-in, we log in there, come back with a one-time
# code and get the app cookie.
app_host="bench.localhost:$gh_port"
jar="$work/jar"
c() { curl -s -o /dev/null -b "$jar" -c "$jar" --resolve "$app_host:127.0.0.1" "$@"; }
signin=$(c -w '%{redirect_url}' "http://$app_host/")
case $signin in "$base/apps/bench/signin?"*) ;; *) echo "bench-apps: the app origin sent us to '$signin'" >&2; exit 1 ;; esac
code=$(c -w '%{http_code}' --data-urlencode "email=bench-member@example.com" --data-urlencode "password=$password" "$base/login")
[ "$code" = 303 ] || { echo "bench-apps: login answered $code" >&2; exit 1; }
callback=$(c -w '%{redirect_url}' "$signin")
case $callback in "http://$app_host/.gatehouse/callback?"*) ;; *) echo "bench-apps: the sign-in sent us to '$callback'" >&2; exit 1 ;; esac
c "$callback"
app_cookie=$(awk '$6 == "gatehouse_app" {print $6 "=" $7}' "$jar")
[ -n "$app_cookie" ] || { echo "bench-apps: no app cookie after the handshake" >&2; exit 1; }
got=$(curl -s -H "Host: $app_host" -H "Cookie: $app_cookie" "http://127.0.0.1:$gh_port/")
[ "$got" = "$(curl -s "http://127.0.0.1:$up_port/")" ] || { echo "bench-apps: through Gatehouse: $got" >&2; exit 1; }
for p in "$nginx_port" "$caddy_port" "$goproxy_port"; do
  [ "$(curl -s "http://127.0.0.1:$p/")" = "$got" ] || { echo "bench-apps: port $p answers otherwise" >&2; exit 1; }
done

# cputicks PID...: the CPU time (user + system, in clock ticks) the
# processes and their children (nginx's workers) have used.
cputicks() {
  local t=0 p
  for p in "$@" $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
# run NAME PID URL [wrk args...]: one wrk slice; output in $work/NAME.*.txt,
# the proxy's CPU ticks in $work/NAME.*.cpu.
run() {
  local name=$1 pid=$2 url=$3 n=1 t0
  shift 3
  while [ -e "$work/$name.$n.txt" ]; do n=$((n + 1)); done
  t0=$(cputicks "$pid")
  wrk -t"$threads" -c"$conns" -d"${RUN_FOR:-$slice}" --latency "$@" "$url" >"$work/$name.$n.txt"
  echo "$(( $(cputicks "$pid") - t0 ))" >"$work/$name.$n.cpu"
}
wrkstat() { awk -v want="$2" -f scripts/wrkstat.awk "$work/$1".*.txt; }
cpu() {
  local ticks
  ticks=$(cat "$work/$1".*.cpu | awk '{s += $1} END {print s}')
  awk -v t="$ticks" -v n="$(wrkstat "$1" requests)" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", t * 1e6 / hz / n}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a / b}'; }

gatehouse_run() { run gatehouse "$gh_pid" "http://127.0.0.1:$gh_port/" -H "Host: $app_host" -H "Cookie: $app_cookie"; }
echo "--- warming up (2 s each)"
RUN_FOR=2s run warm "$up_pid" "http://127.0.0.1:$up_port/"
RUN_FOR=2s run warm "$nginx_pid" "http://127.0.0.1:$nginx_port/"
RUN_FOR=2s run warm "$caddy_pid" "http://127.0.0.1:$caddy_port/"
RUN_FOR=2s run warm "$goproxy_pid" "http://127.0.0.1:$goproxy_port/"
RUN_FOR=2s gatehouse_run
rm -f "$work"/gatehouse.*.txt "$work"/gatehouse.*.cpu

echo "--- $slices slices of $slice each: direct, nginx, caddy, goproxy, gatehouse ($conns connections, $threads wrk thread(s))"
for _ in $(seq "$slices"); do
  run direct "$up_pid" "http://127.0.0.1:$up_port/"
  run nginx "$nginx_pid" "http://127.0.0.1:$nginx_port/"
  run caddy "$caddy_pid" "http://127.0.0.1:$caddy_port/"
  run goproxy "$goproxy_pid" "http://127.0.0.1:$goproxy_port/"
  gatehouse_run
done

for name in direct nginx caddy goproxy gatehouse; do
  if [ "$(wrkstat $name non2xx)" != 0 ]; then
    echo "bench-apps: the $name run had $(wrkstat $name non2xx) non-2xx answers" >&2
    exit 1
  fi
done
echo
printf '%-10s %9s %9s %9s %12s %14s\n' target rps p50_ms p99_ms worst_p99_ms proxy_cpu_us
for name in direct nginx caddy goproxy gatehouse; do
  printf '%-10s %9s %9s %9s %12s %14s\n' "$name" "$(wrkstat $name rps)" "$(wrkstat $name p50)" "$(wrkstat $name p99)" \
    "$(wrkstat $name worst99)" "$([ $name = direct ] && echo - || cpu $name)"
done
echo
echo "gatehouse / nginx rps: $(ratio "$(wrkstat gatehouse rps)" "$(wrkstat nginx rps)") (goal 0.7x)"
echo "gatehouse / caddy rps: $(ratio "$(wrkstat gatehouse rps)" "$(wrkstat caddy rps)") (goal 0.8x)"
echo "gatehouse / goproxy rps: $(ratio "$(wrkstat gatehouse rps)" "$(wrkstat goproxy rps)")"
echo "gatehouse p99 - caddy p99: $(awk -v a="$(wrkstat gatehouse p99)" -v b="$(wrkstat caddy p99)" 'BEGIN{printf "%+.2f ms", a - b}') (goal at most +2 ms)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
