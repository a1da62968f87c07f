#!/usr/bin/env bash
# Single-endpoint loopback figures with wrk (apt-get install wrk): 2 threads,
# 64 connections, 8 s each, against the release server on a temporary
# database. Usage: cargo build --release && bench/wrk/run.sh
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../../target/release/wemaster}
D=$(mktemp -d); cd $D
start() {
  env "$@" WEMASTER_LOG__LEVEL=warn WEMASTER_SERVER__ADDR=127.0.0.1:3111 $BIN >server.log 2>&1 & PID=$!
  until curl -sf localhost:3111/readyz >/dev/null; do
    kill -0 $PID 2>/dev/null || { echo "the server did not start:"; cat server.log; exit 1; }
    sleep 0.05
  done
}
stop() { kill $PID; wait $PID 2>/dev/null; }
w() { wrk -t2 -c64 -d8s --latency "$@" | awk '/Requests\/sec/{r=$2} /99%/{p=$2} END{printf "%s rps, p99 %s", r, p}'; }
echo "== reads (limits off)"
start WEMASTER_RATE_LIMIT__ENABLED=false
curl -s localhost:3111/api/v1/offerings >/dev/null; curl -s localhost:3111/api/v1/offerings/python-for-absolute-beginners > /dev/null
echo "livez:           $(w http://127.0.0.1:3111/livez)"
echo "cached list:     $(w http://127.0.0.1:3111/api/v1/offerings)"
echo "  as browsers ask, gzip: $(w -H 'Accept-Encoding: gzip' http://127.0.0.1:3111/api/v1/offerings)"
echo "  as browsers ask, br:   $(w -H 'Accept-Encoding: gzip, deflate, br' http://127.0.0.1:3111/api/v1/offerings)"
echo "cached detail:   $(w http://127.0.0.1:3111/api/v1/offerings/python-for-absolute-beginners)"
echo "uncached search: $(w -s $HERE/search.lua http://127.0.0.1:3111)"
echo "livez again:     $(w http://127.0.0.1:3111/livez)"
TOKEN=$(curl -s localhost:3111/api/v1/auth/login -H 'content-type: application/json' -d '{"email":"student@test.com","password":"password123"}' | python3 -c "import sys,json; print(json.load(sys.stdin)['accessToken'])")
OFF=$(curl -s 'localhost:3111/api/v1/offerings?limit=1' | python3 -c "import sys,json; print(json.load(sys.stdin)[0]['id'])")
cat > draft.lua <<LUA
wrk.method = "POST"
wrk.body = '{"offeringId":"$OFF","quantity":1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
cat > login.lua <<LUA
wrk.method = "POST"
wrk.body = '{"email":"student@test.com","password":"password123"}'
wrk.headers["Content-Type"] = "application/json"
LUA
echo "logins:          $(w -s login.lua http://127.0.0.1:3111/api/v1/auth/login)"
echo "== writes"
echo "order drafts:    $(w -s draft.lua http://127.0.0.1:3111/api/v1/orders/draft)"
python3 $HERE/webhooks.py > hooks.lua
echo "webhooks (unique events): $(w -s hooks.lua http://127.0.0.1:3111/api/v1/payments/webhooks/stripe)"
echo "livez beside:    $(w http://127.0.0.1:3111/livez)"
stop
echo "== limiter cost on the cached list"
start WEMASTER_RATE_LIMIT__ENABLED=false
echo "limits off: $(w http://127.0.0.1:3111/api/v1/offerings)"
stop
start
echo "limits on:  $(w http://127.0.0.1:3111/api/v1/offerings)"
stop
echo "== metrics cost on the cached list (limits off)"
start WEMASTER_RATE_LIMIT__ENABLED=false WEMASTER_METRICS__ENABLED=false
echo "metrics off: $(w http://127.0.0.1:3111/api/v1/offerings)"
stop
start WEMASTER_RATE_LIMIT__ENABLED=false
echo "metrics on:  $(w http://127.0.0.1:3111/api/v1/offerings)"
stop
rm -rf $D
