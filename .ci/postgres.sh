# Sourced by .ci/run: installs PostgreSQL if missing, starts a throwaway cluster in a temporary
# directory on a free loopback port (stopped by an EXIT trap), and exports what the tests read:
#   AUTHD_TEST_PG_URL   superuser URL of the cluster (tests create a fresh database each)
#   AUTHD_TEST_PG_CTL   path of pg_ctl, AUTHD_TEST_PG_DATA the data dir, AUTHD_TEST_PG_USER the
#                       OS user owning it (the outage test stops and restarts the server)
# Works as root on a fresh Debian 12 (initdb refuses root, so the cluster runs as `postgres`,
# or as the current user when not root).

pg_bindir() {
    local d
    if command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return
    fi
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/pg_ctl" ]; then echo "$d"; fi
    done | sort -V | tail -n 1
}

if [ -z "$(pg_bindir)" ]; then
    echo "== installing PostgreSQL"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends postgresql
fi
PG_BIN="$(pg_bindir)"
if [ -z "$PG_BIN" ]; then
    echo "PostgreSQL binaries not found after install" >&2
    exit 1
fi

if [ "$(id -u)" = 0 ]; then
    PG_OS_USER=postgres
    id "$PG_OS_USER" >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_OS_USER"
    as_pg() { runuser -u "$PG_OS_USER" -- "$@"; }
else
    PG_OS_USER="$(id -un)"
    as_pg() { "$@"; }
fi

PG_TMP="$(mktemp -d /tmp/authd-ci-pg.XXXXXX)"
chmod 755 "$PG_TMP"
PG_DATA="$PG_TMP/data"
mkdir -p "$PG_DATA"
chown -R "$PG_OS_USER" "$PG_TMP"
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PG_PORT=""
for _ in $(seq 1 50); do
    candidate=$(( 20000 + RANDOM % 40000 ))
    if port_is_free "$candidate"; then PG_PORT=$candidate; break; fi
done
if [ -z "$PG_PORT" ]; then echo "no free loopback port for PostgreSQL" >&2; exit 1; fi
PG_PASSWORD="ci-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"

echo "== PostgreSQL cluster in $PG_DATA on 127.0.0.1:$PG_PORT ($PG_BIN)"
printf '%s\n' "$PG_PASSWORD" > "$PG_TMP/pwfile"
chown "$PG_OS_USER" "$PG_TMP/pwfile"
as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U authd --pwfile="$PG_TMP/pwfile" -A scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$PG_TMP/initdb.log" 2>&1 \
    || { cat "$PG_TMP/initdb.log" >&2; exit 1; }
rm -f "$PG_TMP/pwfile"
cat >>"$PG_DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_TMP'
max_connections = 300
fsync = off
CONF

stop_ci_postgres() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
}
trap stop_ci_postgres EXIT

as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_TMP/server.log" -w -t 60 start >/dev/null \
    || { cat "$PG_TMP/server.log" >&2; exit 1; }

export AUTHD_TEST_PG_URL="postgres://authd:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
export AUTHD_TEST_PG_CTL="$PG_BIN/pg_ctl"
export AUTHD_TEST_PG_DATA="$PG_DATA"
export AUTHD_TEST_PG_USER="$PG_OS_USER"
export AUTHD_TEST_PG_LOG="$PG_TMP/server.log"
