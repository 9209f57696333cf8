#!/usr/bin/env bash
# Runs the bus benchmarks of issue #2 and prints the figures that matter:
# the bus hop against a bare channel hop measured in the same run (target
# ratio ≤ 2), Publish's allocations (target 0) and fan-out deliveries/s to
# five subscribers (target ≥ 4.4M/s on 2 cores).
#
# Rounds interleave the benchmarks (-count=1 per round) so that drift in
# the machine's speed hits bus and baseline alike; medians are reported.
# Usage: scripts/bench.sh [rounds]   (default 10; raw output in bench.out)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
out=${BENCH_OUT:-bench.out}
: >"$out"
go test -c -o /tmp/callbus-bus.test ./callcore/bus/
for ((i = 1; i <= rounds; i++)); do
  /tmp/callbus-bus.test -test.run '^$' -test.bench 'ChanHop|BusHop|BusFanout|Publish' \
    -test.benchmem -test.benchtime 1s -test.count 1 | grep -E '^Benchmark' >>"$out"
  printf 'round %d/%d done\r' "$i" "$rounds" >&2
done
echo >&2
awk '
function median(name,   n, i, j, t, a) {
  n = cnt[name]; for (i = 1; i <= n; i++) a[i] = v[name, i]
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  name = $1; sub(/-[0-9]+$/, "", name)
  for (i = 2; i < NF; i++) {
    if ($(i + 1) == "ns/op") { cnt[name]++; v[name, cnt[name]] = $i }
    if ($(i + 1) == "allocs/op") allocs[name] = $i
    if ($(i + 1) == "deliveries/s") { dc[name]++; d[name, dc[name]] = $i }
  }
}
END {
  printf "%-36s %12s %10s\n", "benchmark (median of " cnt["BenchmarkChanHop/plane=data"] ")", "ns/op", "allocs/op"
  for (name in cnt) printf "%-36s %12.1f %10s\n", name, median(name), allocs[name] | "sort"
  close("sort")

  split("data control", ps, " ")
  for (k in ps) {
    c = median("BenchmarkChanHop/plane=" ps[k]); b = median("BenchmarkBusHop/plane=" ps[k])
    if (c > 0) printf "hop ratio bus/chan, plane=%-8s %.2fx  (target <= 2)\n", ps[k], b / c
  }
  n = dc["BenchmarkBusFanout"]
  for (i = 1; i <= n; i++) a[i] = d["BenchmarkBusFanout", i]
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  if (n) printf "fan-out to 5 subscribers: %.2fM deliveries/s median (min %.2fM; target >= 4.4M)\n", ((n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) / 1e6, a[1] / 1e6
}' "$out"
if command -v benchstat >/dev/null 2>&1; then benchstat "$out"; fi
