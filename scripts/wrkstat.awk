# wrkstat.awk: one number over the output of several `wrk --latency` runs,
# for bench-load.sh and bench-instances.sh.
#   awk -v want=rps|p50|p99|worst99|non2xx|requests -f scripts/wrkstat.awk RUN...
# rps is over all the runs, p50 and p99 are the median run's, worst99 the
# highest p99; latencies in ms.
function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
function median(a, n,    i, j, t) {
  for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
/^Running / { n++ }
/requests in/ { reqs += $1; d = $4; sub(/,$/, "", d); secs += ms(d) / 1000 }
/^ +50%/ { p50[n] = ms($2) }
/^ +99%/ { p99[n] = ms($2); if (p99[n] > worst) worst = p99[n] }
/Non-2xx or 3xx responses:/ { bad += $5 }
END {
  if (want == "rps") printf "%.0f", reqs / secs
  if (want == "p50") printf "%.2f", median(p50, n)
  if (want == "p99") printf "%.2f", median(p99, n)
  if (want == "worst99") printf "%.2f", worst
  if (want == "non2xx") printf "%d", bad
  if (want == "requests") printf "%d", reqs
}
