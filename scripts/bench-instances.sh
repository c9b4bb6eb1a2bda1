#!/usr/bin/env bash
# Several instances on one PostgreSQL (issue 19; `task bench:instances`).
# Builds the release binary, seeds an empty PostgreSQL database with the
# CLI (a member of 'bench', granted the demo dashboard 'finance'), starts
# BENCH_INSTANCES servers on it and as many bare net/http handlers writing
# the allowed panel's bytes, then in turn, slice by slice:
#   1. drives the allowed panel on every instance at once (one wrk each,
#      BENCH_CONNS connections split between them),
#   2. drives the bare handlers the same way,
# and prints each instance's rps, p50 and p99 beside its bare handler's,
# with the ratio. With BENCH_CHURN=1 a CLI process changes access (adds and
# removes an unrelated grant) every 100 ms during the runs, so every
# instance's cached facts go stale and reload all the time.
#
# Needs wrk and an empty database: BENCH_DB=postgres://…  (required).
# Knobs as in bench-load.sh: BENCH_DURATION (per kind, default 15s),
# BENCH_SLICES (3), BENCH_CONNS (32 in all), BENCH_PORT (18180),
# BENCH_INSTANCES (2), BENCH_SERVE_FLAGS, BENCH_CHURN.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${BENCH_DB:?set BENCH_DB to the DSN of an empty PostgreSQL database}"
duration=${BENCH_DURATION:-15s}
slices=${BENCH_SLICES:-3}
instances=${BENCH_INSTANCES:-2}
conns=${BENCH_CONNS:-32}
port=${BENCH_PORT:-18180}
panel=/dashboards/finance/panels/burn-and-runway
password="bench load password 7"
case $duration in
  *[!0-9]*s | s | *[!0-9s]*) echo "bench-instances: BENCH_DURATION must be whole seconds, like 15s" >&2; exit 1 ;;
esac
slice="$(( ${duration%s} / slices > 0 ? ${duration%s} / slices : 1 ))s"
per=$(( conns / instances > 0 ? conns / instances : 1 ))
command -v wrk >/dev/null || { echo "bench-instances: wrk is not installed (Debian: apt-get install -y wrk)" >&2; exit 1; }

work=$(mktemp -d /tmp/gatehouse-instances.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "--- building the release binary"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/gatehouse" .
go build -o "$work/benchtool" ./internal/benchtool
gh() { "$work/gatehouse" "$@" --db "$BENCH_DB" >/dev/null; }

echo "--- seeding with the CLI"
gh migrate
printf '%s\n' "$password" | gh users create bench-member@example.com --password-stdin
gh groups create bench
gh groups create churn
gh groups add-member bench bench-member@example.com
gh grants add finance bench --demo

app() { echo "http://127.0.0.1:$((port + 2 * $1))"; }
bare() { echo "http://127.0.0.1:$((port + 2 * $1 + 1))"; }
cookies=()
for i in $(seq 0 $((instances - 1))); do
  # shellcheck disable=SC2086 # BENCH_SERVE_FLAGS is a list of flags
  "$work/gatehouse" serve --addr "127.0.0.1:$((port + 2 * i))" --db "$BENCH_DB" --demo ${BENCH_SERVE_FLAGS:-} \
    >/dev/null 2>>"$work/server$i.log" &
  pids+=($!)
  for _ in $(seq 200); do curl -sf -o /dev/null "$(app "$i")/healthz" && break; sleep 0.05; done
  jar="$work/jar$i"
  code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" --data-urlencode "email=bench-member@example.com" \
    --data-urlencode "password=$password" "$(app "$i")/login")
  [ "$code" = 303 ] || { echo "bench-instances: login on instance $i answered $code" >&2; exit 1; }
  cookies+=("$(awk '$6 ~ /gatehouse_session$/ {print $6 "=" $7}' "$jar")")
  code=$(curl -s -o "$work/allowed.html" -w '%{http_code}' -H 'HX-Request: true' -H "Cookie: ${cookies[$i]}" "$(app "$i")$panel")
  [ "$code" = 200 ] || { echo "bench-instances: the panel on instance $i answered $code" >&2; exit 1; }
done
for i in $(seq 0 $((instances - 1))); do
  "$work/benchtool" bare "127.0.0.1:$((port + 2 * i + 1))" "$work/allowed.html" 2>>"$work/bare.log" &
  pids+=($!)
  for _ in $(seq 200); do curl -sf -o /dev/null "$(bare "$i")/" && break; sleep 0.02; done
done

churn_pid=""
if [ -n "${BENCH_CHURN:-}" ]; then
  echo "--- changing access every 100 ms from the CLI during the runs"
  (while :; do gh grants add support churn --demo; sleep 0.05; gh grants remove support churn --demo; sleep 0.05; done) &
  churn_pid=$!
  pids+=("$churn_pid")
fi

# all KIND: one slice of KIND (allowed or bare) on every instance at once.
all() {
  local kind=$1 n=1 i runs=()
  while [ -e "$work/$kind.0.$n.txt" ]; do n=$((n + 1)); done
  for i in $(seq 0 $((instances - 1))); do
    if [ "$kind" = allowed ]; then
      wrk -t1 -c"$per" -d"$slice" --latency -H 'HX-Request: true' -H "Cookie: ${cookies[$i]}" "$(app "$i")$panel" >"$work/$kind.$i.$n.txt" &
      runs+=($!)
    else
      wrk -t1 -c"$per" -d"$slice" --latency -H 'HX-Request: true' "$(bare "$i")$panel" >"$work/$kind.$i.$n.txt" &
      runs+=($!)
    fi
  done
  wait "${runs[@]}"
}
echo "--- $slices x ($slice allowed panel on $instances instances at once, $slice bare handlers): $per connections each"
for _ in $(seq "$slices"); do
  all allowed
  all bare
done
[ -z "$churn_pid" ] || { kill "$churn_pid" 2>/dev/null; wait "$churn_pid" 2>/dev/null || true; }

# stat FILES... rps|p50|p99|non2xx: one number over the runs (scripts/wrkstat.awk).
stat() { awk -v want="${!#}" -f scripts/wrkstat.awk "${@:1:$#-1}"; }
printf '\n%-12s %9s %8s %8s   %9s %8s %8s   %7s\n' instance "rps" p50_ms p99_ms "bare rps" p50_ms p99_ms "vs bare"
for i in $(seq 0 $((instances - 1))); do
  bad=$(stat "$work"/allowed.$i.*.txt non2xx)
  [ "$bad" = 0 ] || { echo "bench-instances: instance $i answered $bad non-2xx" >&2; exit 1; }
  a=$(stat "$work"/allowed.$i.*.txt rps)
  b=$(stat "$work"/bare.$i.*.txt rps)
  printf '%-12s %9s %8s %8s   %9s %8s %8s   %7s\n' "$i" "$a" "$(stat "$work"/allowed.$i.*.txt p50)" \
    "$(stat "$work"/allowed.$i.*.txt p99)" "$b" "$(stat "$work"/bare.$i.*.txt p50)" "$(stat "$work"/bare.$i.*.txt p99)" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.0f%%", 100 * a / b}')"
done
echo "($instances instances on one PostgreSQL, each driven by its own wrk with $per connections, all at once;"
echo " the bare handlers likewise; $slices interleaved slices of $slice)${BENCH_CHURN:+; access changed every 100 ms}"
echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3); server flags: ${BENCH_SERVE_FLAGS:-none}"
