#!/usr/bin/env bash
# SIP load of issue #3: sipp's built-in uac scenario (INVITE, ACK, BYE)
# against callbus (CALLBUS_INBOUND=answer, media set up for every call) and
# against a bare sipgo answering server (internal/benchpeer/bareuas), in one
# run, rounds interleaved. Prints completed calls/s for each and the ratio
# (DESIGN.md §9: callbus ≥ 1000 calls/s with no failed call, and at least
# half the bare server's rate).
#
# Usage: scripts/sip-load.sh [calls per round] [rounds]   (defaults 6000, 3)
# Environment: RATE (offered calls/s), LIMIT (concurrent calls), CALLBUS_GOGC,
# BEFORE (a git revision: callbus built from it runs too, as "before", so
# that a change is measured against its baseline in the same run).
# Needs sipp (Debian package sip-tester). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-6000}
rounds=${2:-3}
rate=${RATE:-4000}      # offered calls/s (bare sipgo collapses into timeouts near 6000 here)
limit=${LIMIT:-1000}    # concurrent calls
command -v sipp >/dev/null || { echo "sipp is not installed (apt-get install sip-tester)" >&2; exit 1; }

bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/callbus" ./cmd/callbus
go build -o "$bin/bareuas" ./internal/benchpeer/bareuas
servers=(bare callbus)
if [[ -n ${BEFORE:-} ]]; then
  git worktree add -q --detach "$bin/src-before" "$BEFORE"
  trap 'kill $(jobs -p) 2>/dev/null || true; git worktree remove --force "$bin/src-before" 2>/dev/null || true; rm -rf "$bin"' EXIT
  (cd "$bin/src-before" && go build -o "$bin/callbus-before" ./cmd/callbus)
  servers=(bare before callbus)
fi

# run_callbus BINARY DATADIR: a callbus node that answers every call.
run_callbus() {
  CALLBUS_INBOUND=answer CALLBUS_SIP_ADDR=127.0.0.1:15060 CALLBUS_SIP_TRANSPORTS=udp \
  CALLBUS_HTTP_ADDR=127.0.0.1:18080 CALLBUS_DATA_DIR="$2" CALLBUS_LOG_LEVEL=error \
  CALLBUS_MAX_CALLS=100000 CALLBUS_RTP_PORTS=20000-60000 GOGC=${CALLBUS_GOGC:-100} "$1" &
  server=$!
  target=127.0.0.1:15060
}
start_callbus() { run_callbus "$bin/callbus" "$bin/data"; }
start_before() { run_callbus "$bin/callbus-before" "$bin/data-before"; }
start_bare() {
  "$bin/bareuas" -addr 127.0.0.1:15080 >/dev/null &
  server=$!
  target=127.0.0.1:15080
}

# one_round NAME: prints "NAME ok failed seconds calls/s"
one_round() {
  local name=$1 out t0 t1 ok failed
  "start_$name"
  sleep 0.5
  t0=$(date +%s.%N)
  out=$(cd "$bin" && sipp -sn uac "$target" -i 127.0.0.1 -p 0 -m "$calls" -r "$rate" -l "$limit" -d 0 \
    -nostdin -timeout 120s -timeout_error 2>&1 || true)
  t1=$(date +%s.%N)
  kill -TERM "$server"; wait "$server" 2>/dev/null || true
  ok=$(grep -E '^\s*Successful call' <<<"$out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  failed=$(grep -E '^\s*Failed call' <<<"$out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  awk -v n="$name" -v ok="${ok:-0}" -v f="${failed:-0}" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%-8s %6d ok %5d failed %6.2fs %8.1f calls/s\n", n, ok, f, t1 - t0, ok / (t1 - t0) }'
}

results=()
for ((r = 1; r <= rounds; r++)); do
  order=("${servers[@]}")
  if ((r % 2 == 0 && ${#servers[@]} == 3)); then
    order=(bare callbus before) # alternate, so that neither always runs second
  fi
  for name in "${order[@]}"; do
    line=$(one_round "$name")
    echo "round $r: $line"
    results+=("$line")
  done
done
printf '%s\n' "${results[@]}" | awk '
  { rate[$1] += $7; n[$1]++; failed[$1] += $4 }
  END {
    b = rate["bare"] / n["bare"]; c = rate["callbus"] / n["callbus"]
    printf "mean: bare %.1f calls/s, callbus %.1f calls/s (failed: bare %d, callbus %d)\n", b, c, failed["bare"], failed["callbus"]
    if (n["before"]) {
      p = rate["before"] / n["before"]
      printf "mean: before %.1f calls/s (failed %d); ratio before/bare: %.2f\n", p, failed["before"], p / b
    }
    printf "ratio callbus/bare: %.2f  (targets: callbus >= 1000 calls/s, ratio >= 0.5)\n", c / b
  }'
