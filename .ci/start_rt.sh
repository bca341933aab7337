#!/usr/bin/env bash
# start_rt.sh - install (if needed), initialise (if needed) and start a throw-away
# Request Tracker 5 (Debian 12 "bookworm" packages, SQLite backend, Starlet
# standalone server) on 127.0.0.1:PORT, for integration tests against REST 2.
#
# Usage:  start_rt.sh [PORT] [DATA_DIR]          start (idempotent), default 18080 /tmp/rt-test-PORT
#         start_rt.sh stop [PORT] [DATA_DIR]     stop the server started for that PORT/DATA_DIR
#
# Environment knobs:
#   RT_RESET=1            delete DATA_DIR (database, config, logs) first -> brand new RT
#   RT_ROOT_PASSWORD      password for user "root" (default: password)
#   RT_WORKERS            Starlet worker processes (default 2; each ~210 MB RSS, mostly shared)
#   RT_INITIALDATA=FILE   RT initialdata file (Perl) loaded once, right after DB init
#   RT_READY_TIMEOUT      seconds to wait for the API (default 60)
#
# ticketwarden's .ci/run starts it with RT_INITIALDATA=contrib/ticketwarden-rt/tests/
# rt_initialdata.pl and exports TICKETWARDEN_TEST_RT_URL for the real-RT tests
# (contrib/ticketwarden-rt/tests/test_rt_real_*.py); copied from the shared tools.
#
# Needs root (apt-get). Nothing in /etc/request-tracker5 is changed: every instance
# has its own config dir (RT_SITE_CONFIG_DIR) and its own SQLite file in DATA_DIR.
# On success prints one line starting with RT_READY and exits 0.
set -euo pipefail

ACTION=start
if [ "${1:-}" = "stop" ]; then ACTION=stop; shift; fi
PORT=${1:-18080}
DATA=${2:-/tmp/rt-test-$PORT}
PASS=${RT_ROOT_PASSWORD:-password}
WORKERS=${RT_WORKERS:-2}
TIMEOUT=${RT_READY_TIMEOUT:-60}
RT_SERVER=/usr/share/request-tracker5/libexec/rt-server
SETUP_DB=/usr/sbin/rt-setup-database-5
URL="http://127.0.0.1:$PORT"
PIDFILE="$DATA/rt-server.pid"
unset RT_SITE_CONFIG_DIR RT_SITE_CONFIG
CONF_DIR="$DATA/etc"   # passed to RT commands only (must NOT leak into apt-get/postinst)

log() { echo "[start_rt $(date +%H:%M:%S)] $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
api_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' -u "root:$PASS" "$URL/REST/2.0/queue/1" 2>/dev/null)" = 200 ]; }
running_pid() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && cat "$PIDFILE"; }

stop_server() {
  local pid
  if pid=$(running_pid); then
    log "stopping rt-server pid $pid (process group)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { log "still alive, SIGKILL"; kill -KILL -- "-$pid" 2>/dev/null || true; }
  fi
  rm -f "$PIDFILE"
}

if [ "$ACTION" = stop ]; then stop_server; exit 0; fi

T_ALL=$(now)

# ---------------------------------------------------------------- 0. reset / already up?
if [ "${RT_RESET:-0}" = 1 ]; then
  stop_server
  log "RT_RESET=1: wiping $DATA"; rm -rf "$DATA"
elif pid=$(running_pid) && api_ok; then
  echo "RT_READY url=$URL/REST/2.0 user=root password=$PASS pid=$pid data=$DATA (already running)"
  exit 0
fi
stop_server   # stale pid file / half-dead server

# ---------------------------------------------------------------- 1. packages
PKGS="request-tracker5 rt5-db-sqlite rt5-standalone"
installed() { [ "$(dpkg-query -W -f='${Status}\n' $PKGS 2>/dev/null | grep -c '^install ok installed$')" = 3 ]; }
if installed; then
  log "packages already installed"
else
  T=$(now)
  log "installing $PKGS (non-interactive)"
  export DEBIAN_FRONTEND=noninteractive
  # Preseed the debconf questions. These only shape the package's *default*
  # instance (/etc/request-tracker5 + /var/lib/dbconfig-common/sqlite3/...);
  # the instance started below uses its own config dir and database.
  debconf-set-selections <<'EOF'
request-tracker5 request-tracker5/rtname string rt.test.local
request-tracker5 request-tracker5/organization string rt.test.local
request-tracker5 request-tracker5/correspondaddress string rt@localhost
request-tracker5 request-tracker5/commentaddress string rt-comment@localhost
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1:18080
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean true
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/initial-root-password password password
request-tracker5 request-tracker5/dbconfig-install boolean true
request-tracker5 request-tracker5/database-type select sqlite3
rt5-db-sqlite rt5-db-sqlite/available boolean true
EOF
  APT="apt-get -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends"
  if ! apt-cache policy request-tracker5 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null
  fi
  $APT install $PKGS >"/tmp/start_rt-apt-$$.log" 2>&1 || {
    log "apt-get install failed, retrying after apt-get update"; apt-get -q update >/dev/null
    $APT install $PKGS >>"/tmp/start_rt-apt-$$.log" 2>&1 || { tail -30 "/tmp/start_rt-apt-$$.log" >&2; exit 1; }
  }
  log "packages installed in $(since "$T") s (log /tmp/start_rt-apt-$$.log)"
fi

# ---------------------------------------------------------------- 2. instance config
mkdir -p "$CONF_DIR"
cat >"$CONF_DIR/50-test-instance.pm" <<EOF
# generated by start_rt.sh - throw-away test instance, NOT for production
Set(\$rtname, 'rt-test-$PORT');
Set(\$Organization, 'rt-test-$PORT.local');
Set(\$CorrespondAddress, 'rt@localhost');
Set(\$CommentAddress, 'rt-comment@localhost');
Set(\$Timezone, 'UTC');
Set(\$WebPath, '');
Set(\$WebDomain, '127.0.0.1');
Set(\$WebPort, $PORT);
Set(\$WebBaseURL, '$URL');
Set(\$DatabaseType, 'SQLite');
Set(\$DatabaseName, '$DATA/rt.sqlite');
Set(\$DatabaseHost, 'localhost');
Set(\$DatabaseUser, '');
Set(\$DatabasePassword, '');
Set(\$BcryptCost, 4);           # cheap bcrypt => ~20 ms instead of ~200 ms per basic-auth request
Set(\$MailCommand, 'mbox');     # never send mail; RT writes it to /var/lib/request-tracker5/*.mbox
Set(\$LogToSyslog, undef);
Set(\$LogToSTDERR, 'warning');
1;
EOF

# ---------------------------------------------------------------- 3. database
if [ ! -s "$DATA/rt.sqlite" ] || [ ! -f "$DATA/.initialised" ]; then
  T=$(now)
  rm -f "$DATA/rt.sqlite" "$DATA/.initialised"
  printf '%s\n' "$PASS" >"$DATA/.rootpw"; chmod 600 "$DATA/.rootpw"
  log "initialising database $DATA/rt.sqlite"
  RT_SITE_CONFIG_DIR="$CONF_DIR" "$SETUP_DB" --action init --skip-create --root-password-file "$DATA/.rootpw" >"$DATA/setup-db.log" 2>&1 \
    || { cat "$DATA/setup-db.log" >&2; exit 1; }
  if [ -n "${RT_INITIALDATA:-}" ]; then
    log "loading initialdata $RT_INITIALDATA"
    RT_SITE_CONFIG_DIR="$CONF_DIR" "$SETUP_DB" --action insert --datafile "$RT_INITIALDATA" >>"$DATA/setup-db.log" 2>&1 \
      || { cat "$DATA/setup-db.log" >&2; exit 1; }
  fi
  rm -f "$DATA/.rootpw"; touch "$DATA/.initialised"
  log "database initialised in $(since "$T") s"
else
  log "database exists: $DATA/rt.sqlite"
fi

# ---------------------------------------------------------------- 4. server
if curl -s -o /dev/null "$URL/" 2>/dev/null; then
  log "ERROR: something else is already listening on $URL"; exit 1
fi
T=$(now)
log "starting rt-server on $URL ($WORKERS workers), log $DATA/rt-server.log"
# setsid: own process group/session, so 'stop' can kill master+workers together
RT_SITE_CONFIG_DIR="$CONF_DIR" setsid "$RT_SERVER" --host 127.0.0.1 --port "$PORT" --max-workers "$WORKERS" \
  >"$DATA/rt-server.log" 2>&1 </dev/null &
echo $! >"$PIDFILE"
for _ in $(seq 1 $((TIMEOUT * 10))); do
  api_ok && break
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { log "rt-server exited:"; tail -20 "$DATA/rt-server.log" >&2; exit 1; }
  sleep 0.1
done
api_ok || { log "timeout after ${TIMEOUT}s"; tail -20 "$DATA/rt-server.log" >&2; exit 1; }
log "server answered after $(since "$T") s (total $(since "$T_ALL") s)"
echo "RT_READY url=$URL/REST/2.0 user=root password=$PASS pid=$(cat "$PIDFILE") data=$DATA"
