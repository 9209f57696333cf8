#!/usr/bin/env bash
# REST read load: seeds a fresh data dir with calls (TestSeedCalls places
# them through REST to a calltest phone that answers, then hangs each up),
# starts callbus on that dir, and runs wrk against GET /v1/calls (one page,
# 100 calls) and GET /v1/calls/{id}, with a bearer key and no rate limit.
# wrk prints requests/s and the latency distribution (p99 included).
#
# Usage: scripts/rest-load.sh [calls] [seconds]   (defaults 1000, 10)
# Environment: THREADS (wrk -t, default 2), CONNS (wrk -c, default 32).
# Needs wrk (Debian package wrk). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-1000}
secs=${2:-10}
threads=${THREADS:-2}
conns=${CONNS:-32}
key=rest-load-key-0123456789
addr=127.0.0.1:18081
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "seeding $calls calls into $work/data"
CALLBUS_SEED_DIR="$work/data" CALLBUS_SEED_CALLS=$calls \
  go test -count=1 -run '^TestSeedCalls$' ./cmd/callbus >/dev/null
go build -o "$work/callbus" ./cmd/callbus

CALLBUS_DATA_DIR="$work/data" CALLBUS_HTTP_ADDR=$addr CALLBUS_SIP_ADDR=127.0.0.1:0 \
CALLBUS_API_KEYS=$key CALLBUS_RATE_LIMIT=0 CALLBUS_LOG_LEVEL=error "$work/callbus" &
for _ in $(seq 100); do
  curl -fs "http://$addr/readyz" >/dev/null && break
  sleep 0.1
done

auth="Authorization: Bearer $key"
stored=$(curl -fs -H "$auth" "http://$addr/v1/calls?limit=500" | grep -o '"id":"[^"]*"' | wc -l)
id=$(curl -fs -H "$auth" "http://$addr/v1/calls?limit=1" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
echo "stored: $stored calls on the first page of 500; one of them: $id"

for path in /v1/calls "/v1/calls/$id"; do
  echo
  echo "== wrk -t$threads -c$conns -d${secs}s --latency GET $path"
  wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -H "$auth" "http://$addr$path"
done
