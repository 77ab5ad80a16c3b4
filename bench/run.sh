#!/usr/bin/env bash
# authd benchmark harness (issue 6). One command:
#
#   bash bench/run.sh [--quick] [--check]
#
#   --quick         3 rounds of 3 s per scenario (about 4-5 minutes) instead of
#                   5 rounds of 10 s (about 10-12 minutes), builds not counted
#   --check         exit non-zero when a target is missed
#   --rounds N      override the number of rounds
#   --duration S    override the measured seconds per scenario and round
#   --wait-idle M   before each round, wait (at most M minutes in all) until
#                   other processes leave the cores idle (default 5, --quick 1;
#                   0 never waits); a busy machine is flagged in the results
#   --keep          keep the temporary data directories and logs
#   --without-authd measure only the limits and the peer (to test the harness)
#   AUTHD_BIN=PATH  environment: measure that authd binary instead of building one
#
# It builds the release binaries, seeds authd stores (1,000 / 100,000 /
# 1,000,000 tokens), starts every server on 127.0.0.1 on free ports, runs each
# scenario once per round (rounds interleave scenarios, so drift hits all of
# them alike) and writes bench/results/latest.md and latest.json: every figure
# is the median over the rounds with its min-max. Every target is a ratio
# against a limit measured in the same run on the same machine.
#
# Needs: cargo, python3, node + npm (oidc-provider is installed from npm into
# bench/.peer on first use). Every load loop is bounded in time; only loopback
# addresses are used.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ARGS_TEXT="$*"

QUICK=0
CHECK=0
KEEP=0
WITH_AUTHD=1
WAIT_IDLE_MIN=""
ROUNDS=""
DURATION=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --check) CHECK=1 ;;
    --keep) KEEP=1 ;;
    --without-authd) WITH_AUTHD=0 ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --wait-idle) WAIT_IDLE_MIN=$2; shift ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-3}; WARMUP=1; WAIT_IDLE_MIN=${WAIT_IDLE_MIN:-1}
else
  ROUNDS=${ROUNDS:-5}; DURATION=${DURATION:-10}; WARMUP=2; WAIT_IDLE_MIN=${WAIT_IDLE_MIN:-5}
fi
CONNS=64            # connections for every token-check and peer scenario
CREATE_CONNS=32     # connections for createtoken
PEER_TOKENS=1000    # tokens minted by the peer
SMALL=1000
MID=100000
BIG=1000000

# Only the flags given below configure the servers under test.
unset AUTHD_CONFIG AUTHD_DATA_DIR AUTHD_DATABASE_URL AUTHD_MASTER_KEY AUTHD_MASTER_KEY_FILE AUTHD_LISTEN

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in cargo python3; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
HAVE_NODE=1
command -v node >/dev/null && command -v npm >/dev/null || HAVE_NODE=0

# ---------------------------------------------------------------- build
log "building release binaries"
if [ "$WITH_AUTHD" = 1 ] && [ -z "${AUTHD_BIN:-}" ]; then
  cargo build --release --quiet -p authd -p authd-bench --features authd/dev-tools
else
  cargo build --release --quiet -p authd-bench
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
AUTHD="${AUTHD_BIN:-$TARGET_DIR/release/authd}"   # AUTHD_BIN: measure another authd build
BENCH="$TARGET_DIR/release/authd-bench"
[ -x "$BENCH" ] || die "missing $BENCH"
if [ "$WITH_AUTHD" = 1 ]; then
  [ -x "$AUTHD" ] || die "missing $AUTHD"
  "$AUTHD" dev seed-tokens --help >/dev/null 2>&1 \
    || die "authd has no 'dev seed-tokens' subcommand yet (use --without-authd to test the harness)"
fi

# ---------------------------------------------------------------- workspace
# On the repository's disk (not /tmp, which may be memory): the commit-rate
# limit must be measured on the disk authd writes to.
mkdir -p bench/results/tmp
WORK=$(mktemp -d "$ROOT/bench/results/tmp/run.XXXXXX")
RAW="$WORK/raw.jsonl"
: > "$RAW"
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

now_ns() { date +%s%N; }

# record SCENARIO ROUND JSON [extra JSON fields]: append one line to raw.jsonl
record() {
  python3 - "$1" "$2" "$3" "${4:-}" >> "$RAW" <<'PY'
import json, sys
scenario, rnd, result, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
row = {"scenario": scenario, "round": rnd}
row.update(json.loads(result))
if extra:
    row.update(json.loads(extra))
print(json.dumps(row))
PY
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# start_authd NAME DATADIR: sets SRV_PID, SRV_PORT, SRV_READY_MS
start_authd() {
  local name=$1 dir=$2 t0 t1
  SRV_PORT=$(free_port)
  t0=$(now_ns)
  "$AUTHD" --data-dir "$dir" serve --listen "127.0.0.1:$SRV_PORT" \
    >>"$WORK/$name.log" 2>&1 &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  "$BENCH" wait-ready --url "http://127.0.0.1:$SRV_PORT/readyz" --timeout 60 >/dev/null \
    || { tail -20 "$WORK/$name.log" >&2; die "authd ($name) did not become ready"; }
  t1=$(now_ns)
  SRV_READY_MS=$(( (t1 - t0) / 1000000 ))
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# expect_status WANT CURL-ARGS...: a one-request sanity check before loading.
expect_status() {
  local want=$1; shift
  local got
  got=$(curl -s -o "$WORK/probe.out" -w '%{http_code}' --max-time 10 "$@" || true)
  if [ "$got" != "$want" ]; then
    log "sanity check failed: wanted HTTP $want, got $got for: $*"
    head -c 400 "$WORK/probe.out" >&2 || true; echo >&2
    die "a server under test does not answer as expected"
  fi
}

load() { "$BENCH" load --warmup "$WARMUP" --duration "$DURATION" "$@"; }

# ---------------------------------------------------------------- servers
log "work dir: $WORK"
BASE_PORT=$(free_port)
"$BENCH" baseline --listen "127.0.0.1:$BASE_PORT" >"$WORK/baseline.log" 2>&1 &
BASE_PID=$!
PIDS+=("$BASE_PID")
"$BENCH" wait-ready --url "http://127.0.0.1:$BASE_PORT/readyz" --timeout 30 >/dev/null \
  || die "baseline did not start"

if [ "$WITH_AUTHD" = 1 ]; then
  seed() { # seed NAME COUNT: init a store, seed COUNT tokens; sets SEED_MS
    local name=$1 count=$2 t0 t1
    mkdir -p "$WORK/$name"
    "$AUTHD" --data-dir "$WORK/$name" init > "$WORK/$name.admin" 2>>"$WORK/$name.log" \
      || die "authd init ($name) failed"
    head -n1 "$WORK/$name.admin" | tr -d '\r\n ' > "$WORK/$name.admin1" && mv "$WORK/$name.admin1" "$WORK/$name.admin"
    [ -s "$WORK/$name.admin" ] || die "authd init ($name) printed no token"
    if [ "$count" -gt 0 ]; then
      t0=$(now_ns)
      "$AUTHD" --data-dir "$WORK/$name" dev seed-tokens --count "$count" --out "$WORK/$name.tokens" \
        >>"$WORK/$name.log" 2>&1 || { tail -20 "$WORK/$name.log" >&2; die "seeding $name failed"; }
      t1=$(now_ns)
      SEED_MS=$(( (t1 - t0) / 1000000 ))
      local n
      n=$(wc -l < "$WORK/$name.tokens")
      [ "$n" -eq "$count" ] || die "seed-tokens ($name) wrote $n tokens, wanted $count"
      log "seeded $name: $count tokens in ${SEED_MS} ms"
      record "seed_$name" 0 "{\"seed_ms\": $SEED_MS, \"tokens\": $count}"
    fi
  }
  log "seeding stores (1k, 100k, 1M tokens) and a fresh one for createtoken"
  seed small "$SMALL"
  seed mid "$MID"
  seed big "$BIG"
  seed create 0

  start_authd small "$WORK/small"; SMALL_PID=$SRV_PID; SMALL_PORT=$SRV_PORT
  start_authd mid "$WORK/mid"; MID_PID=$SRV_PID; MID_PORT=$SRV_PORT
  start_authd create "$WORK/create"; CREATE_PID=$SRV_PID; CREATE_PORT=$SRV_PORT

  ADMIN_SMALL=$(cat "$WORK/small.admin")
  ADMIN_CREATE=$(cat "$WORK/create.admin")
  ID_SMALL=$(printf '%s' "$ADMIN_SMALL" | cut -d. -f2)
  expect_status 200 -H "Authorization: $ADMIN_SMALL" "http://127.0.0.1:$SMALL_PORT/api/auth/$ID_SMALL"
  T1=$(head -n1 "$WORK/mid.tokens")
  expect_status 200 -H "Authorization: $T1" "http://127.0.0.1:$MID_PORT/api/auth/$(printf '%s' "$T1" | cut -d. -f2)"
  expect_status 401 "http://127.0.0.1:$SMALL_PORT/api/auth/$ID_SMALL"
  CREATE_BODY='{"scopes":["observer"],"name":"b"}'
  expect_status 201 -X POST -H "Authorization: $ADMIN_CREATE" -H 'Content-Type: application/json' \
    --data "$CREATE_BODY" "http://127.0.0.1:$CREATE_PORT/api/auth/createtoken"
fi

PEER_PID=""
if [ "$HAVE_NODE" = 1 ]; then
  PEER_DIR="$ROOT/bench/.peer"
  mkdir -p "$PEER_DIR"
  want=$(python3 -c 'import json; print(json.load(open("bench/peer/package.json"))["dependencies"]["oidc-provider"])')
  have=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
    "$PEER_DIR/node_modules/oidc-provider/package.json" 2>/dev/null || echo none)
  if [ "$want" != "$have" ]; then
    log "installing oidc-provider $want into bench/.peer (npm)"
    cp bench/peer/package.json bench/peer/package-lock.json "$PEER_DIR/"
    (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
      || die "npm ci for the peer failed"
  fi
  cp bench/peer/server.mjs "$PEER_DIR/server.mjs"
  PEER_PORT=$(free_port)
  node "$PEER_DIR/server.mjs" --port "$PEER_PORT" --tokens "$PEER_TOKENS" --out "$WORK/peer.tokens" \
    >"$WORK/peer.log" 2>&1 &
  PEER_PID=$!
  PIDS+=("$PEER_PID")
  for _ in $(seq 1 600); do
    [ -s "$WORK/peer.tokens" ] && break
    kill -0 "$PEER_PID" 2>/dev/null || { cat "$WORK/peer.log" >&2; die "the peer exited"; }
    sleep 0.1
  done
  [ -s "$WORK/peer.tokens" ] || die "the peer minted no tokens within 60 s"
  PT=$(head -n1 "$WORK/peer.tokens")
  expect_status 200 -u bench:bench-secret --data "token=$PT" "http://127.0.0.1:$PEER_PORT/token/introspection"
  grep -q '"active":true' "$WORK/probe.out" || die "the peer does not report its own token active"
  PEER_BASIC=$(printf 'bench:bench-secret' | base64)
  PEER_VERSION=$have
  [ "$PEER_VERSION" = none ] && PEER_VERSION=$want
else
  log "node/npm not found: skipping the peer"
fi

# ---------------------------------------------------------------- rounds
# One-token file for the baseline and the one-token scenario.
if [ "$WITH_AUTHD" = 1 ]; then
  cp "$WORK/small.admin" "$WORK/one.tokens"
else
  printf 'at.%s.baselinesecret\n' "$(python3 -c 'import secrets; print(secrets.token_hex(16))')" > "$WORK/one.tokens"
fi

# How busy is the machine without us? (Other processes make every figure noisy.)
# busy_cores SECONDS: CPU cores busy on the whole machine over that many seconds.
busy_cores() {
  python3 - "$1" <<'PY'
import sys, time
def busy():
    v = [float(x) for x in open("/proc/stat").readline().split()[1:9]]
    return sum(v) - v[3] - v[4]
secs = float(sys.argv[1])
a = busy(); time.sleep(secs); b = busy()
print(f"{(b - a) / 100 / secs:.2f}")
PY
}
is_busy() { python3 -c "import sys; sys.exit(0 if float('$1') > 0.25 else 1)"; }
WAIT_DEADLINE=$(( $(date +%s) + WAIT_IDLE_MIN * 60 ))
# wait_idle: with --wait-idle, pause (bounded by its budget) until the machine is quiet.
wait_idle() {
  [ "$WAIT_IDLE_MIN" -gt 0 ] || return 0
  local b
  while :; do
    b=$(busy_cores 3)
    is_busy "$b" || return 0
    if [ "$(date +%s)" -ge "$WAIT_DEADLINE" ]; then
      log "still busy ($b cores) and the --wait-idle budget is spent: measuring anyway"
      return 0
    fi
    log "machine busy ($b cores): waiting for it to be idle"
    sleep 10
  done
}
wait_idle
IDLE_BUSY=$(busy_cores 3)
log "machine busy before the rounds: $IDLE_BUSY cores (of $(nproc))"
if is_busy "$IDLE_BUSY"; then
  log "WARNING: the machine is not idle: figures will be noisy"
fi

log "running $ROUNDS rounds x ${DURATION}s (+${WARMUP}s warm-up) per scenario"
for round in $(seq 1 "$ROUNDS"); do
  wait_idle
  log "round $round/$ROUNDS"

  r=$(load --url "http://127.0.0.1:$BASE_PORT/api/auth/{id}" --connections "$CONNS" \
        --tokens "$WORK/one.tokens" --server-pid "$BASE_PID")
  record baseline "$round" "$r"

  if [ "$WITH_AUTHD" = 1 ]; then
    r=$(load --url "http://127.0.0.1:$SMALL_PORT/api/auth/{id}" --connections "$CONNS" \
          --tokens "$WORK/one.tokens" --server-pid "$SMALL_PID")
    record authd_1token "$round" "$r"

    r=$(load --url "http://127.0.0.1:$MID_PORT/api/auth/{id}" --connections "$CONNS" \
          --tokens "$WORK/mid.tokens" --server-pid "$MID_PID")
    record authd_100k "$round" "$r" "{\"rss_kb\": $(rss_kb "$MID_PID")}"

    r=$(load --url "http://127.0.0.1:$SMALL_PORT/api/auth/{id}" --connections "$CONNS" \
          --tokens "$WORK/small.tokens" --server-pid "$SMALL_PID")
    record authd_1k "$round" "$r" "{\"rss_kb\": $(rss_kb "$SMALL_PID")}"

    # Fresh start of the 1M-token store every round: start-up time, then load,
    # then resident memory.
    start_authd big "$WORK/big"
    BIG_PID=$SRV_PID; BIG_PORT=$SRV_PORT
    rss_start=$(rss_kb "$BIG_PID")
    record startup_1M "$round" "{\"ready_ms\": $SRV_READY_MS, \"rss_kb\": $rss_start}"
    r=$(load --url "http://127.0.0.1:$BIG_PORT/api/auth/{id}" --connections "$CONNS" \
          --tokens "$WORK/big.tokens" --server-pid "$BIG_PID")
    record authd_1M "$round" "$r" "{\"rss_kb\": $(rss_kb "$BIG_PID"), \"hwm_kb\": $(hwm_kb "$BIG_PID")}"
    # Diagnostic: the same 1M store, requests over only 1,000 of its tokens, which
    # separates the cost of the store's size from that of a large working set.
    r=$(load --url "http://127.0.0.1:$BIG_PORT/api/auth/{id}" --connections "$CONNS" \
          --tokens "$WORK/big.tokens" --limit-tokens "$SMALL" --server-pid "$BIG_PID")
    record authd_1M_ws1k "$round" "$r"
    stop_pid "$BIG_PID"

    r=$(load --url "http://127.0.0.1:$CREATE_PORT/api/auth/createtoken" --method POST \
          --body "$CREATE_BODY" --connections "$CREATE_CONNS" \
          --tokens "$WORK/create.admin" --server-pid "$CREATE_PID")
    record createtoken "$round" "$r"
  fi

  r=$("$BENCH" sqlite-commit --path "$WORK/commit.db" --duration "$DURATION")
  record sqlite_commit "$round" "$r"

  if [ -n "$PEER_PID" ]; then
    r=$(load --url "http://127.0.0.1:$PEER_PORT/token/introspection" --method POST \
          --tokens "$WORK/peer.tokens" --header none --body 'token={token}' \
          --content-type application/x-www-form-urlencoded \
          --extra-header "Authorization: Basic $PEER_BASIC" \
          --connections "$CONNS" --server-pid "$PEER_PID")
    record peer "$round" "$r"
  fi
done

# ---------------------------------------------------------------- report
META="$WORK/meta.json"
python3 - "$META" <<PY
import json, sys, platform, subprocess, datetime, os
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""
model = ""
for line in sh("lscpu").splitlines():
    if line.startswith("Model name:"):
        model = line.split(":", 1)[1].strip()
json.dump({
    "command": ("bash bench/run.sh $ARGS_TEXT").strip(),
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "nproc": sh("nproc"),
    "cpu_model": model,
    "kernel": platform.release(),
    "memory": sh("free -h | awk '/^Mem:/ {print \$2}'"),
    "rustc": sh("rustc --version"),
    "node": sh("node --version"),
    "peer": "oidc-provider ${PEER_VERSION:-none}",
    "git": (sh("git rev-parse --short HEAD 2>/dev/null") or "no commit")
           + (" + uncommitted changes" if sh("git status --porcelain --untracked-files=no 2>/dev/null") else ""),
    "rounds": $ROUNDS, "duration_s": $DURATION, "warmup_s": $WARMUP,
    "connections": $CONNS, "create_connections": $CREATE_CONNS,
    "peer_tokens": $PEER_TOKENS, "with_authd": $WITH_AUTHD == 1,
    "idle_check_busy_cores": float("$IDLE_BUSY"), "wait_idle_min": $WAIT_IDLE_MIN,
}, open(sys.argv[1], "w"), indent=2)
PY

mkdir -p bench/results
set +e
python3 bench/report.py --raw "$RAW" --meta "$META" \
  --md bench/results/latest.md --json bench/results/latest.json \
  $([ "$CHECK" = 1 ] && echo --check)
status=$?
set -e
log "wrote bench/results/latest.md and bench/results/latest.json"
exit $status
