# A throwaway PostgreSQL for the test suite: no Docker, a temp directory, a free loopback port.
# `source .ci/postgres.sh; start_postgres` exports MENTIONWATCH_TEST_DATABASE_URL; `stop_postgres` removes it all.

pg_bin() {
    local dir
    for dir in "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")" /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return; fi
    done
    return 1
}

install_postgres() {
    # Debian's own packages; CI runs as root. Elsewhere, install PostgreSQL yourself.
    if ! pg_bin >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

as_db_user() {
    # initdb refuses to run as root: the server runs as the `postgres` user (or `nobody`) when we are root.
    if [ "$(id -u)" = 0 ]; then
        local user=postgres
        id "$user" >/dev/null 2>&1 || user=nobody
        runuser -u "$user" -- "$@"
    else
        "$@"
    fi
}

start_postgres() {
    install_postgres
    local bin
    bin="$(pg_bin)"
    PG_TMP="$(mktemp -d)"
    chmod 755 "$PG_TMP"
    mkdir "$PG_TMP/data" "$PG_TMP/run" "$PG_TMP/log"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 && chown postgres "$PG_TMP"/{data,run,log} || chown nobody "$PG_TMP"/{data,run,log}
    fi
    PG_PORT="$(free_port)"
    as_db_user "$bin/initdb" -D "$PG_TMP/data" -U mentionwatch --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    # Durability is pointless for a throwaway server; the tests' own kill -9s are of mentionwatch, not PostgreSQL.
    as_db_user "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log/server.log" -w -s start -o \
        "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_TMP/run -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=300"
    export PG_TMP PG_BIN="$bin"
    export MENTIONWATCH_TEST_DATABASE_URL="postgresql+psycopg://mentionwatch@127.0.0.1:$PG_PORT/postgres"
    echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT ($PG_TMP)"
}

stop_postgres() {
    if [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP/data" ]; then
        as_db_user "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w -s stop || true
        rm -rf "$PG_TMP"
    fi
}
