#!/usr/bin/env bash
# Rehearse docs/deploy.md on one machine, on loopback: the guide's steps in order, with its own
# unit files, environment file and nginx site (docs/deploy/), then checks that they work.
#
#   sudo bash tools/deploy_rehearsal.sh            # as root (initdb runs as the postgres user)
#
# Needs: PostgreSQL server binaries (Debian: postgresql), nginx, openssl, curl, jq, and the
# vmgrade virtual environment ($VENV, default .venv) installed with the web and postgres extras.
# Everything lives in a temporary folder and is stopped and removed at the end; the ports are
# taken at random on 127.0.0.1. Addresses, paths and names of the guide are swapped for those.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-$ROOT/.venv}
VMGRADE="$VENV/bin/vmgrade"
# the workers' model options (default: none, the default model); e.g. "--model tiny.en" for a quick run
read -r -a MODEL_ARGS <<<"${REHEARSAL_MODEL_ARGS:-}"
# converted checkpoints: where this machine has them already (a fresh one converts them once)
MODEL_DIR=${VMGRADE_MODEL_DIR:-$HOME/.cache/vmgrade/models}
WORK=$(mktemp -d /tmp/vmgrade-deploy.XXXXXX)
chmod 755 "$WORK"
PIDS=()
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || command -v initdb)")

say() { printf '\n== %s\n' "$*"; }
port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    sleep 2
    for pid in "${PIDS[@]}"; do pkill -9 -s "$pid" 2>/dev/null; kill -9 "$pid" 2>/dev/null; done
    [ -f "$WORK/nginx.pid" ] && nginx -c "$WORK/nginx.conf" -s stop 2>/dev/null
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

PG_PORT=$(port); WEB_PORTS=("$(port)" "$(port)"); HTTPS_PORT=$(port)
mkdir -p "$WORK/etc" "$WORK/sock" "$WORK/var"

say "1. PostgreSQL: a cluster, a role and a database for vmgrade (password authentication)"
chown postgres "$WORK/sock"
install -d -o postgres -m 700 "$WORK/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth-local=peer \
    --auth-host=scram-sha-256 >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w \
    -o "-p $PG_PORT -k $WORK/sock -c listen_addresses=127.0.0.1" start >/dev/null
DB_PASSWORD=$(openssl rand -hex 16)
runuser -u postgres -- "$PGBIN/psql" -q -h "$WORK/sock" -p "$PG_PORT" -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE vmgrade LOGIN PASSWORD '$DB_PASSWORD'"
runuser -u postgres -- "$PGBIN/createdb" -h "$WORK/sock" -p "$PG_PORT" -O vmgrade vmgrade

say "2. the secret and the environment file every unit reads"
openssl rand -hex 32 > "$WORK/etc/secret_key"
chmod 600 "$WORK/etc/secret_key"
sed -e "s#^VMGRADE_DB_URL=.*#VMGRADE_DB_URL=postgresql+psycopg://vmgrade:$DB_PASSWORD@127.0.0.1:$PG_PORT/vmgrade#" \
    -e "s#/etc/vmgrade/secret_key#$WORK/etc/secret_key#" \
    -e "s#^VMGRADE_PROXY_IPS=.*#VMGRADE_PROXY_IPS=127.0.0.1#" \
    -e "s#^HOME=.*#HOME=$WORK/var#" \
    -e "s#^VMGRADE_MODEL_DIR=.*#VMGRADE_MODEL_DIR=$MODEL_DIR#" \
    docs/deploy/vmgrade.env > "$WORK/etc/vmgrade.env"
set -a; . "$WORK/etc/vmgrade.env"; set +a

say "3. accounts (vmgrade users add; it migrates the empty database)"
PASSWORD="rehearsal-$(openssl rand -hex 6)"
out=$(echo "$PASSWORD" | "$VMGRADE" users add --username tom --role trainer --team east --password-stdin)
echo "$out"
if grep -q "$DB_PASSWORD" <<<"$out"; then echo "FAIL: users add printed the database password" >&2; exit 1; fi
echo "$PASSWORD" | "$VMGRADE" users add --username rita --role rep --team east --password-stdin >/dev/null

say "4. the systemd units: systemd-analyze verify, then their ExecStart run as they are"
for unit in vmgrade-web@ vmgrade-worker@; do
    sed -e "s#/opt/vmgrade/venv#$VENV#" -e "s#/etc/vmgrade/vmgrade.env#$WORK/etc/vmgrade.env#" \
        -e "s#/var/lib/vmgrade#$WORK/var#g" "docs/deploy/$unit.service" > "$WORK/$unit.service"
done
if command -v systemd-analyze >/dev/null; then
    (cd "$WORK" && systemd-analyze verify "./vmgrade-web@${WEB_PORTS[0]}.service" ./vmgrade-worker@1.service)
    echo "systemd-analyze verify: ok"
else
    echo "no systemd-analyze here: units not verified"
fi
exec_start() {  # the unit's ExecStart, continuation lines joined, %i and ${VAR} filled in
    awk '/^ExecStart=/{s=1} s{line=line $0; if ($0 !~ /\\$/) {print line; exit}}' "$WORK/$1.service" |
        sed -e 's/^ExecStart=//' -e 's/\\ *//g' -e "s/%i/$2/g" |
        sed -e "s#\${VMGRADE_PROXY_IPS}#$VMGRADE_PROXY_IPS#g"
}
start() {  # NAME INSTANCE [EXTRA ARGS]: its ExecStart in the background, log in $WORK/NAME-INSTANCE.log
    local cmd; cmd=$(exec_start "$1" "$2")
    # shellcheck disable=SC2086
    setsid $cmd "${@:3}" > "$WORK/$1$2.log" 2>&1 &
    PIDS+=($!)
    echo "started $1$2 (pid $!): $cmd ${*:3}"
}
start vmgrade-web@ "${WEB_PORTS[0]}"
start vmgrade-web@ "${WEB_PORTS[1]}"
start vmgrade-worker@ 1 "${MODEL_ARGS[@]}"
start vmgrade-worker@ 2 "${MODEL_ARGS[@]}"

say "5. nginx with TLS in front of both nodes (a self-signed certificate for the rehearsal)"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=vmgrade.test" \
    -addext "subjectAltName=DNS:vmgrade.test" -keyout "$WORK/privkey.pem" -out "$WORK/fullchain.pem" 2>/dev/null
sed -e "s#10.0.0.11:8000#127.0.0.1:${WEB_PORTS[0]}#" -e "s#10.0.0.12:8000#127.0.0.1:${WEB_PORTS[1]}#" \
    -e "s#listen 443 ssl#listen 127.0.0.1:$HTTPS_PORT ssl#" -e "/listen 80;/d" \
    -e "s#vmgrade.example.com#vmgrade.test#g" \
    -e "s#/etc/ssl/vmgrade/#$WORK/#g" docs/deploy/nginx-vmgrade.conf > "$WORK/site.conf"
cat > "$WORK/nginx.conf" <<EOF
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events {}
http {
    access_log $WORK/nginx-access.log;
    client_body_temp_path $WORK/nginx-body;
    proxy_temp_path $WORK/nginx-proxy;
    include $WORK/site.conf;
}
EOF
nginx -t -c "$WORK/nginx.conf" 2>&1 | tail -1
nginx -c "$WORK/nginx.conf"

say "6. a rep uploads through the proxy over HTTPS; a worker grades; the report is read from both nodes"
BASE="https://vmgrade.test:$HTTPS_PORT"
CURL=(curl -sS --fail-with-body --cacert "$WORK/fullchain.pem" --resolve "vmgrade.test:$HTTPS_PORT:127.0.0.1"
      -b "$WORK/jar" -c "$WORK/jar")
for _ in $(seq 120); do "${CURL[@]}" -o /dev/null "$BASE/api/csrf" 2>/dev/null && break; sleep 1; done
token=$("${CURL[@]}" "$BASE/api/csrf" | jq -r .csrf_token)
token=$("${CURL[@]}" -H "X-CSRF-Token: $token" -H 'Content-Type: application/json' \
        -d "{\"username\":\"rita\",\"password\":\"$PASSWORD\"}" "$BASE/api/login" | jq -r .csrf_token)
grep -q "#HttpOnly_vmgrade.test.*TRUE" "$WORK/jar" || { echo "FAIL: the session cookie is not Secure" >&2; exit 1; }
id=$("${CURL[@]}" -H "X-CSRF-Token: $token" -F file=@samples/before_practice.wav "$BASE/api/uploads" | jq -r .id)
echo "uploaded: recording $id"
for _ in $(seq 300); do
    state=$("${CURL[@]}" "$BASE/api/recordings/$id" | jq -r .state)
    [ "$state" = done ] || [ "$state" = failed ] && break
    sleep 1
done
echo "state: $state"
[ "$state" = done ] || { tail -20 "$WORK"/vmgrade-worker@*.log >&2; exit 1; }
score=$("${CURL[@]}" "$BASE/api/recordings/$id/report" | jq -r .score)
# the session cookie is Secure (HTTPS only): sent by hand to the nodes' plain HTTP ports
COOKIE=$(awk -F'\t' '/vmgrade\.test/ {printf "%s=%s; ", $6, $7}' "$WORK/jar")
for p in "${WEB_PORTS[@]}"; do  # each node directly: the same report, from the database
    got=$(curl -sS -H "Cookie: $COOKIE" "http://127.0.0.1:$p/api/recordings/$id/report" | jq -r .score)
    [ "$got" = "$score" ] || { echo "FAIL: node $p answers score $got, not $score" >&2; exit 1; }
done
echo "score $score from the proxy and from both nodes"
page=$("${CURL[@]}" "$BASE/recordings/$id/report")  # drawn by a node at this first view
grep -q "<html" <<<"$page" || { echo "FAIL: no report page through the proxy" >&2; exit 1; }
echo "report page through the proxy: $(wc -c <<<"$page") bytes"

say "7. backup (pg_dump) and a tested restore into a new database"
runuser -u postgres -- "$PGBIN/pg_dump" -h "$WORK/sock" -p "$PG_PORT" -Fc -f "$WORK/sock/vmgrade.dump" vmgrade
runuser -u postgres -- "$PGBIN/createdb" -h "$WORK/sock" -p "$PG_PORT" -O vmgrade vmgrade_restored
runuser -u postgres -- "$PGBIN/pg_restore" -h "$WORK/sock" -p "$PG_PORT" --no-owner --role=vmgrade \
    -d vmgrade_restored "$WORK/sock/vmgrade.dump"
RESTORED_PORT=$(port)
VMGRADE_DB_URL="${VMGRADE_DB_URL%/vmgrade}/vmgrade_restored" setsid "$VMGRADE" serve --port "$RESTORED_PORT" \
    --workers 0 --data-dir "$WORK/var/restored" > "$WORK/restored.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 60); do curl -s -o /dev/null "http://127.0.0.1:$RESTORED_PORT/api/csrf" && break; sleep 1; done
got=$(curl -sS -H "Cookie: $COOKIE" "http://127.0.0.1:$RESTORED_PORT/api/recordings/$id/report" | jq -r .score)
[ "$got" = "$score" ] || { echo "FAIL: the restored database answers $got" >&2; exit 1; }
audio=$(curl -sS -H "Cookie: $COOKIE" "http://127.0.0.1:$RESTORED_PORT/recordings/$id/audio" | sha256sum | cut -d' ' -f1)
[ "$audio" = "$(sha256sum samples/before_practice.wav | cut -d' ' -f1)" ] || { echo "FAIL: restored audio differs" >&2; exit 1; }
echo "restored: the same session, report (score $got) and audio"

say "rehearsal passed"
