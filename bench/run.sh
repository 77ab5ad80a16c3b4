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
#   --results NAME  write bench/results/NAME.md and NAME.json (default latest)
#   --without-authd measure only the limits and the peer (to test the harness)
#   --skip-big      no 1,000,000-token store (saves its ~2-3 min of seeding; its
#                   targets are reported as skipped): for smoke runs
#   --skip-pg       no PostgreSQL scenario (skipped anyway, with a line in the
#                   report, when initdb/pg_ctl are not installed)
#   AUTHD_BIN=PATH  environment: measure that authd binary instead of building one
#
# It builds the release binaries, seeds authd stores (1,000 / 100,000 /
# 1,000,000 tokens), starts every server on 127.0.0.1 on free ports, starts a
# throwaway PostgreSQL cluster on loopback (when installed) with one authd node
# on it, runs each scenario once per round (rounds interleave scenarios, so
# drift hits all of them alike) and writes bench/results/latest.md and
# latest.json (or --results NAME): every figure is the median over the rounds
# with its min-max.
# Every target is a ratio against a limit measured in the same run on the same
# machine.
#
# Needs: cargo, python3, node + npm (oidc-provider is installed from npm into
# bench/.peer on first use), optionally PostgreSQL's initdb/pg_ctl. Every load
# loop is bounded in time; only loopback addresses are used.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ARGS_TEXT="$*"

QUICK=0
CHECK=0
KEEP=0
WITH_AUTHD=1
SKIP_BIG=0
SKIP_PG=0
RESULTS=latest
WAIT_IDLE_MIN=""
ROUNDS=""
DURATION=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --check) CHECK=1 ;;
    --keep) KEEP=1 ;;
    --without-authd) WITH_AUTHD=0 ;;
    --skip-big) SKIP_BIG=1 ;;
    --skip-pg) SKIP_PG=1 ;;
    --results) RESULTS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --wait-idle) WAIT_IDLE_MIN=$2; shift ;;
    -h|--help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

case "$RESULTS" in
  ""|.*|*/*) echo "--results wants a plain file name, got: $RESULTS" >&2; exit 2 ;;
esac

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
PG_TOKENS=10000     # tokens in the PostgreSQL store (random-token and cache-miss scenarios)

# Only the flags given below configure the servers under test.
unset AUTHD_CONFIG AUTHD_DATA_DIR AUTHD_DATABASE_URL AUTHD_MASTER_KEY AUTHD_MASTER_KEY_FILE AUTHD_LISTEN \
  AUTHD_DB_TIMEOUT_MS AUTHD_DB_MAX_CONNECTIONS AUTHD_TOKEN_CACHE_MAX_AGE_MS AUTHD_MAX_CONNECTIONS

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
  pg_stop
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
pg_stop() { :; }   # replaced once a PostgreSQL cluster is started
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

# try_start_authd NAME DATADIR: sets SRV_PID, SRV_PORT, SRV_READY_MS; 1 when it is not ready.
# AUTHD_* variables set before the call (e.g. the database URL) reach the server.
try_start_authd() {
  local name=$1 dir=$2 t0 t1
  SRV_PORT=$(free_port)
  t0=$(now_ns)
  "$AUTHD" --data-dir "$dir" serve --listen "127.0.0.1:$SRV_PORT" \
    >>"$WORK/$name.log" 2>&1 &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  "$BENCH" wait-ready --url "http://127.0.0.1:$SRV_PORT/readyz" --timeout 60 >/dev/null \
    || { tail -20 "$WORK/$name.log" >&2; log "authd ($name) did not become ready"; return 1; }
  t1=$(now_ns)
  SRV_READY_MS=$(( (t1 - t0) / 1000000 ))
}
start_authd() { try_start_authd "$@" || die "authd ($1) did not become ready"; }

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# check_status WANT CURL-ARGS...: a one-request sanity check before loading (1 on a mismatch).
check_status() {
  local want=$1; shift
  local got
  got=$(curl -s -o "$WORK/probe.out" -w '%{http_code}' --max-time 10 "$@" || true)
  if [ "$got" != "$want" ]; then
    # The arguments may hold a token: show only the URL (the last one).
    log "sanity check failed: wanted HTTP $want, got $got for ${*: -1}"
    head -c 400 "$WORK/probe.out" >&2 || true; echo >&2
    return 1
  fi
}
expect_status() { check_status "$@" || die "a server under test does not answer as expected"; }

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
  if [ "$SKIP_BIG" = 1 ]; then
    log "seeding stores (1k, 100k tokens; no 1M store: --skip-big) and a fresh one for createtoken"
  else
    log "seeding stores (1k, 100k, 1M tokens) and a fresh one for createtoken"
  fi
  seed small "$SMALL"
  seed mid "$MID"
  [ "$SKIP_BIG" = 1 ] || seed big "$BIG"
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

  # The other authenticated reads (issue 12's second table), all on the 1k store
  # with its admin token: find a user and a built-in provider, and upload one
  # entity profile to read back.
  SMALL_URL="http://127.0.0.1:$SMALL_PORT"
  json_first_id() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"][0]["id"])' "$WORK/probe.out"; }
  expect_status 200 -H "Authorization: $ADMIN_SMALL" "$SMALL_URL/api/user"
  USER_SMALL=$(json_first_id) || die "no user in the 1k store"
  expect_status 200 -H "Authorization: $ADMIN_SMALL" "$SMALL_URL/api/provider"
  PROVIDER_BUILTIN=$(json_first_id) || die "no provider in the catalog"
  expect_status 200 -X POST -H "Authorization: $ADMIN_SMALL" -H 'Content-Type: application/json' \
    --data '{"user_id":"u1","name":"bench"}' "$SMALL_URL/collect/json/bench"
  INTROSPECT_BODY='{"token":"{token}"}'
  # READS: scenario name and path of each GET read, in the order they run.
  READS=(
    "auth_self /api/auth/self"
    "account_current /api/account/current"
    "account_aid /api/account/1"
    "account_list /api/account"
    "user_read /api/user/$USER_SMALL"
    "account_setting /api/account/setting"
    "entity_read /api/entity/user/user_id/u1"
    "auth_list_100 /api/auth?limit=100"
    "provider_read /api/provider/$PROVIDER_BUILTIN"
  )
  for spec in "${READS[@]}"; do
    expect_status 200 -H "Authorization: $ADMIN_SMALL" "$SMALL_URL${spec#* }"
  done
  expect_status 200 -H "Authorization: $ADMIN_SMALL" "$SMALL_URL/api/auth?limit=100"
  python3 -c 'import json,sys; n=len(json.load(open(sys.argv[1]))["data"]); sys.exit(0 if n == 100 else 1)' \
    "$WORK/probe.out" || die "GET /api/auth?limit=100 did not answer a page of 100"
  expect_status 200 -X POST -H "Authorization: $ADMIN_SMALL" -H 'Content-Type: application/json' \
    --data "{\"token\":\"$(head -n1 "$WORK/small.tokens")\"}" "$SMALL_URL/api/auth/introspect"
  grep -q '"active":true' "$WORK/probe.out" || die "introspection does not report a seeded token active"
fi

# ---------------------------------------------------------------- PostgreSQL
# A throwaway cluster on loopback (fsync and synchronous_commit on, as in
# production), one authd node on it with the default token cache, and one with
# a 1 ms cache age so that every request is a cache miss. Any failure here skips
# the PostgreSQL scenarios with a line in the report; it never fails the run.
PG_OK=0
PG_STATUS="skipped: --skip-pg"
pg_bindir() {
  local d
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return
  fi
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then echo "$d"; fi
  done | sort -V | tail -n 1
}
# pg_setup: sets PG_URL, PG_ADMIN, PG_PID/PG_PORT_HTTP (cached node), PG_MISS_PID/PORT; 1 on failure.
pg_setup() {
  local bin=$1 port pw key
  if [ "$(id -u)" = 0 ]; then
    PG_OS_USER=postgres
    id "$PG_OS_USER" >/dev/null 2>&1 || { log "PostgreSQL: no 'postgres' OS user to run it as root"; return 1; }
    as_pg() { runuser -u "$PG_OS_USER" -- "$@"; }
  else
    PG_OS_USER=$(id -un)
    as_pg() { "$@"; }
  fi
  # On the repository's disk like the SQLite stores, so commit rates are the same disk's.
  PG_TMP=$(mktemp -d "$ROOT/bench/results/tmp/pg.XXXXXX") || return 1
  pg_stop() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true
    if [ "$KEEP" = 1 ]; then log "kept $PG_TMP"; else rm -rf "$PG_TMP"; fi
  }
  chmod 755 "$PG_TMP"
  mkdir -p "$PG_TMP/data"
  chown -R "$PG_OS_USER" "$PG_TMP" || return 1
  port=$(free_port)
  pw="bench-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
  printf '%s\n' "$pw" > "$PG_TMP/pwfile"
  chown "$PG_OS_USER" "$PG_TMP/pwfile"
  as_pg "$bin/initdb" -D "$PG_TMP/data" -U authd --pwfile="$PG_TMP/pwfile" -A scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$PG_TMP/initdb.log" 2>&1 \
    || { tail -5 "$PG_TMP/initdb.log" >&2; log "PostgreSQL: initdb failed"; return 1; }
  rm -f "$PG_TMP/pwfile"
  cat >>"$PG_TMP/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PG_TMP'
max_connections = 200
fsync = on
synchronous_commit = on
CONF
  as_pg "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 start >/dev/null \
    || { tail -5 "$PG_TMP/server.log" >&2; log "PostgreSQL: pg_ctl start failed"; return 1; }
  PG_VERSION=$("$bin/postgres" --version 2>/dev/null | awk '{print $3}')
  PG_URL="postgres://authd:$pw@127.0.0.1:$port/postgres"
  key=$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')
  # Secrets go to authd through its environment only, never its command line.
  local -x AUTHD_DATABASE_URL="$PG_URL" AUTHD_MASTER_KEY="$key"
  "$AUTHD" --data-dir "$PG_TMP/authd" init > "$WORK/pg.admin" 2>>"$WORK/pg.log" \
    || { tail -5 "$WORK/pg.log" >&2; log "PostgreSQL: authd init failed"; return 1; }
  PG_ADMIN=$(head -n1 "$WORK/pg.admin" | tr -d '\r\n ')
  printf '%s\n' "$PG_ADMIN" > "$WORK/pg.admin"
  [ -n "$PG_ADMIN" ] || { log "PostgreSQL: authd init printed no token"; return 1; }
  local t0 t1
  t0=$(now_ns)
  "$AUTHD" --data-dir "$PG_TMP/authd" dev seed-tokens --count "$PG_TOKENS" --out "$WORK/pg.tokens" \
    >>"$WORK/pg.log" 2>&1 || { tail -5 "$WORK/pg.log" >&2; log "PostgreSQL: seeding failed"; return 1; }
  t1=$(now_ns)
  log "seeded pg: $PG_TOKENS tokens in $(( (t1 - t0) / 1000000 )) ms"
  record seed_pg 0 "{\"seed_ms\": $(( (t1 - t0) / 1000000 )), \"tokens\": $PG_TOKENS}"
  try_start_authd pg "$PG_TMP/authd" || return 1
  PG_PID=$SRV_PID; PG_PORT_HTTP=$SRV_PORT
  AUTHD_TOKEN_CACHE_MAX_AGE_MS=1 try_start_authd pg_miss "$PG_TMP/authd" || return 1
  PG_MISS_PID=$SRV_PID; PG_MISS_PORT=$SRV_PORT
  local id
  id=$(printf '%s' "$PG_ADMIN" | cut -d. -f2)
  check_status 200 -H "Authorization: $PG_ADMIN" "http://127.0.0.1:$PG_PORT_HTTP/api/auth/$id" || return 1
  check_status 200 -H "Authorization: $PG_ADMIN" "http://127.0.0.1:$PG_MISS_PORT/api/auth/$id" || return 1
  check_status 201 -X POST -H "Authorization: $PG_ADMIN" -H 'Content-Type: application/json' \
    --data "$CREATE_BODY" "http://127.0.0.1:$PG_PORT_HTTP/api/auth/createtoken" || return 1
  AUTHD_BENCH_PG_URL="$PG_URL" "$BENCH" pg-commit --duration 0.2 >/dev/null \
    || { log "PostgreSQL: the pg-commit probe failed"; return 1; }
  return 0
}
if [ "$WITH_AUTHD" = 1 ] && [ "$SKIP_PG" = 0 ]; then
  PG_BIN=$(pg_bindir)
  if [ -z "$PG_BIN" ]; then
    PG_STATUS="skipped: PostgreSQL is not installed (no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin)"
    log "PostgreSQL not found: skipping its scenarios"
  else
    log "starting a throwaway PostgreSQL cluster ($PG_BIN) and authd on it"
    # A subshell would lose the variables: run in this shell, errors checked inside.
    if pg_setup "$PG_BIN"; then
      PG_OK=1
      PG_STATUS="measured: PostgreSQL ${PG_VERSION:-?}, local cluster on loopback, fsync and synchronous_commit on; $PG_TOKENS tokens"
    else
      PG_STATUS="skipped: the PostgreSQL set-up failed (see the log above)"
      log "PostgreSQL set-up failed: skipping its scenarios"
    fi
  fi
elif [ "$WITH_AUTHD" = 0 ]; then
  PG_STATUS="skipped: --without-authd"
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

    # Every other authenticated read, on the 1k store with its admin token.
    for spec in "${READS[@]}"; do
      r=$(load --url "$SMALL_URL${spec#* }" --connections "$CONNS" \
            --tokens "$WORK/one.tokens" --server-pid "$SMALL_PID")
      record "${spec%% *}" "$round" "$r"
    done
    # Introspection: the admin token asks about one of the 1,000 tokens at random.
    r=$(load --url "$SMALL_URL/api/auth/introspect" --method POST --body "$INTROSPECT_BODY" \
          --tokens "$WORK/small.tokens" --header none --extra-header "Authorization: $ADMIN_SMALL" \
          --connections "$CONNS" --server-pid "$SMALL_PID")
    record introspect "$round" "$r"

    # Fresh start of the 1M-token store every round: start-up time, then load,
    # then resident memory.
    if [ "$SKIP_BIG" = 0 ]; then
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
    fi

    r=$(load --url "http://127.0.0.1:$CREATE_PORT/api/auth/createtoken" --method POST \
          --body "$CREATE_BODY" --connections "$CREATE_CONNS" \
          --tokens "$WORK/create.admin" --server-pid "$CREATE_PID")
    record createtoken "$round" "$r"
  fi

  r=$("$BENCH" sqlite-commit --path "$WORK/commit.db" --duration "$DURATION")
  record sqlite_commit "$round" "$r"

  if [ "$PG_OK" = 1 ]; then
    # A failing PostgreSQL scenario is logged and left out, never fatal.
    pg_load() { # pg_load SCENARIO LOAD-ARGS...
      local name=$1 out; shift
      if out=$(load --connections "$CONNS" "$@"); then record "$name" "$round" "$out"
      else log "PostgreSQL scenario $name failed this round"; fi
    }
    pg_load pg_1token --url "http://127.0.0.1:$PG_PORT_HTTP/api/auth/{id}" \
      --tokens "$WORK/pg.admin" --server-pid "$PG_PID"
    pg_load pg_random --url "http://127.0.0.1:$PG_PORT_HTTP/api/auth/{id}" \
      --tokens "$WORK/pg.tokens" --server-pid "$PG_PID"
    pg_load pg_miss --url "http://127.0.0.1:$PG_MISS_PORT/api/auth/{id}" \
      --tokens "$WORK/pg.tokens" --server-pid "$PG_MISS_PID"
    if r=$(load --url "http://127.0.0.1:$PG_PORT_HTTP/api/auth/createtoken" --method POST \
          --body "$CREATE_BODY" --connections "$CREATE_CONNS" \
          --tokens "$WORK/pg.admin" --server-pid "$PG_PID"); then
      record pg_createtoken "$round" "$r"
    else log "PostgreSQL scenario pg_createtoken failed this round"; fi
    if r=$(AUTHD_BENCH_PG_URL="$PG_URL" "$BENCH" pg-commit --duration "$DURATION"); then
      record pg_commit "$round" "$r"
    else log "the pg-commit probe failed this round"; fi
  fi

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
BENCH_PG_STATUS="$PG_STATUS" python3 - "$META" <<PY
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
    "skip_big": $SKIP_BIG == 1,
    "pg": os.environ.get("BENCH_PG_STATUS", ""),
}, open(sys.argv[1], "w"), indent=2)
PY

mkdir -p bench/results
set +e
python3 bench/report.py --raw "$RAW" --meta "$META" \
  --md "bench/results/$RESULTS.md" --json "bench/results/$RESULTS.json" \
  $([ "$CHECK" = 1 ] && echo --check)
status=$?
set -e
log "wrote bench/results/$RESULTS.md and bench/results/$RESULTS.json"
exit $status
