#!/usr/bin/env bash
# Webhook ingestion measured from outside (issue 2 item 14): `greg serve` (release binary) with
# a generated config in a temp dir, loaded by wrk with bench/ingest.lua.
#
# Usage: bench/wrk.sh [scenario...]   scenarios: synchronize comment mixed ping (default: all)
# Environment: WRK_CONNECTIONS (64), WRK_THREADS (2), WRK_DURATION (15s), WRK_WARMUP (3s),
#              GREG_BIN (default: target/release/greg, built here), RUST_LOG (greg's log level,
#              default info as deployed; the log goes to a file).
#
# Each scenario starts a fresh greg on a fresh SQLite file (WAL; every accepted delivery is
# committed before its 202), runs a wrk warm-up, then the measured wrk run, stops greg and
# counts the stored deliveries. greg runs with actix-web's default of one worker per core;
# wrk's threads run on the same cores. Needs wrk (apt-get install -y wrk), python3 (to sign the
# bodies) and sqlite3 (to count rows).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

connections=${WRK_CONNECTIONS:-64}
threads=${WRK_THREADS:-2}
duration=${WRK_DURATION:-15s}
warmup=${WRK_WARMUP:-3s}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(synchronize comment mixed ping)

for tool in wrk python3 sqlite3; do
  command -v "$tool" >/dev/null || { echo "wrk.sh: $tool not found (apt-get install -y $tool)" >&2; exit 1; }
done
if [ -z "${GREG_BIN:-}" ]; then
  cargo build --release --bin greg
  GREG_BIN="$root/target/release/greg"
fi

tmp=$(mktemp -d)
greg_pid=""
cleanup() {
  if [ -n "$greg_pid" ]; then kill "$greg_pid" 2>/dev/null || true; wait "$greg_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

token=wrk-incoming
secret="wrk webhook secret"

# Signed bodies: repository.full_name set to the configured repository, the rest as recorded,
# compact JSON as GitHub sends it. Prints "<kind> <event> <signature>" lines.
python3 - "$root/tests/data/github" "$tmp" "$secret" > "$tmp/signatures" <<'PY'
import hashlib, hmac, json, sys
fixtures, out, secret = sys.argv[1], sys.argv[2], sys.argv[3].encode()
for kind, event, name in [
    ("synchronize", "pull_request", "pull_request.synchronize.json"),
    ("comment", "issue_comment", "issue_comment.created.on-pull-request.json"),
    ("ping", "ping", "ping.json"),
]:
    payload = json.load(open(f"{fixtures}/{name}", encoding="utf-8"))
    payload["repository"]["full_name"] = "acme/demo"
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    open(f"{out}/{kind}.json", "wb").write(body)
    sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
    print(kind, event, f"sha256={sig}", len(body))
PY

# wrk arguments for one delivery kind: <event> <body-file> <signature>.
kind_args() {
  awk -v k="$1" -v dir="$tmp" '$1 == k { print $2, dir "/" k ".json", $3 }' "$tmp/signatures"
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "wrk.sh: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); greg: $GREG_BIN serve, actix workers = cores"
echo "wrk.sh: wrk -t$threads -c$connections -d$duration --latency (after a $warmup warm-up); bodies: $(awk '{printf "%s %s bytes; ", $1, $4}' "$tmp/signatures")"
summary=()
for scenario in "${scenarios[@]}"; do
  case "$scenario" in
    synchronize|comment) expect=accepted; read -r -a deliveries <<< "$(kind_args "$scenario")" ;;
    mixed) expect=accepted; read -r -a deliveries <<< "$(kind_args synchronize) $(kind_args comment)" ;;
    ping) expect=ignored; read -r -a deliveries <<< "$(kind_args ping)" ;;
    *) echo "wrk.sh: unknown scenario $scenario (synchronize, comment, mixed, ping)" >&2; exit 2 ;;
  esac
  dir="$tmp/$scenario"
  mkdir -p "$dir"
  cat > "$dir/config.yaml" <<YAML
server:
  listen: 127.0.0.1:$port
  database: sqlite://$dir/greg.db
  bot_name: greg
providers:
  github:
    username: greg-bot
    password: wrk-api-token
    incoming_token: $token
    webhook_secret: "$secret"
    source: "git@github.com:"
    # Nothing listens here: processing of these deliveries calls no API (no jobs configured).
    api_url: http://127.0.0.1:9
repos:
  - provider: github
    organizations: [acme]
    names: [demo]
YAML
  RUST_LOG=${RUST_LOG:-info} "$GREG_BIN" --config "$dir/config.yaml" serve 2> "$dir/greg.log" &
  greg_pid=$!
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { echo "wrk.sh: greg did not start:" >&2; cat "$dir/greg.log" >&2; exit 1; }

  url="http://127.0.0.1:$port/repo?provider=github&token=$token"
  run="$(date +%s%N)"
  wrk -t"$threads" -c"$connections" -d"$warmup" -s bench/ingest.lua "$url" -- "w$run" "$expect" "${deliveries[@]}" > "$dir/warmup.txt"
  echo
  echo "== $scenario"
  wrk -t"$threads" -c"$connections" -d"$duration" --latency -s bench/ingest.lua "$url" -- "m$run" "$expect" "${deliveries[@]}" | tee "$dir/wrk.txt"

  kill -TERM "$greg_pid"
  wait "$greg_pid" 2>/dev/null || true
  greg_pid=""
  stored=$(sqlite3 "$dir/greg.db" "SELECT count(*) FROM deliveries")
  pending=$(sqlite3 "$dir/greg.db" "SELECT count(*) FROM deliveries WHERE state = 'pending'")
  sent=$(( $(sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p' "$dir/warmup.txt") + $(sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p' "$dir/wrk.txt") ))
  echo "stored deliveries: $stored (answered requests, warm-up included: $sent; still pending at stop: $pending); greg log: $(wc -l < "$dir/greg.log") lines"
  summary+=("$(printf '%-12s %s' "$scenario" "$(sed -n 's/^RESULT //p' "$dir/wrk.txt")") stored=$stored")
done
echo
echo "== summary (latencies in ms)"
printf '%s\n' "${summary[@]}"
