#!/usr/bin/env bash
# Runs mailbench's scenarios against a freshly started postkasse with 1,000
# users, on loopback, and prints the figures BENCHMARKS.md records.
# Usage: bench/run.sh [quick]   (quick: smaller numbers, for a smoke test)
#
# CHECKS=on bench/run.sh quick: the mail comes from outside, as on the MX
# port of the internet: no trusted networks, every message DKIM-signed by
# the sending domain, whose SPF, DKIM and DMARC records cmd/benchdns serves
# on loopback through [dns] resolver; SPF, DKIM and DMARC are checked for
# every message. CHECKS=off: the same signed messages and DNS server, but
# loopback trusted, so nothing is checked: the pair measures the checks.
#
# STORE=postgres: the store is in a private PostgreSQL cluster started for
# the run (initdb into the run's temporary directory, as the user postgres
# when run as root, a free loopback port), with fsync and
# synchronous_commit on, as in production, and pg_stat_statements loaded:
# the statements of the SMTP scenario, by total time, are printed after it.
# NODES=2 (with STORE=postgres) starts two `postkasse serve` processes on
# that database: the SMTP scenario spreads its connections over both and
# waits until the messages are visible through both; fan-out and IDLE
# deliver through node 1 and watch through node 2, so their figures are the
# push from one node to another. The FETCH scenario runs on bbolt only.
#
# PROFILE=FILE: node 1 writes a CPU profile of its whole run to FILE,
# printed with `go tool pprof -top -cum` at the end. SCENARIOS="smtp" runs only those named
# (of smtp fanout fetch idle), e.g. to profile the SMTP scenario alone.
set -euo pipefail
PROFILE=${PROFILE:+$(realpath -m "$PROFILE")} # before the cd below
cd "$(dirname "$0")/.."
go build -o bin/postkasse ./cmd/postkasse
go build -o bin/mailbench ./cmd/mailbench
CHECKS=${CHECKS:-}
STORE=${STORE:-bbolt}
NODES=${NODES:-1}
SCENARIOS=${SCENARIOS:-smtp fanout fetch idle}
if [ "$STORE" != postgres ] && [ "$NODES" != 1 ]; then
  echo "NODES=$NODES needs STORE=postgres: a bbolt store serves one process" >&2
  exit 2
fi

work=$(mktemp -d)
chmod 755 "$work" # the database's own user reaches its directory in it
PGBIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -f "$work/pg/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$work/pg/data" -m fast -w stop > /dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

N=20000; FANOUT=1000; FILL=100000; CONNS=1000
if [ "${1:-}" = quick ]; then N=2000; FANOUT=100; FILL=2000; CONNS=100; fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }
# as_pg runs a command as the database's user: initdb refuses root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

DSN=
start_postgres() {
  mkdir -p "$work/pg"
  [ "$(id -u)" = 0 ] && chown postgres: "$work/pg"
  as_pg "$PGBIN/initdb" -D "$work/pg/data" -U postkasse --auth=trust -E UTF8 --locale=C > /dev/null
  local port; port=$(port)
  # Durable as in production: fsync, full-page writes and synchronous
  # commit on (the defaults, named so nobody wonders).
  as_pg "$PGBIN/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -o "-p $port -k $work/pg \
    -c listen_addresses=127.0.0.1 -c fsync=on -c full_page_writes=on -c synchronous_commit=on \
    -c max_connections=200 -c shared_buffers=512MB -c track_wal_io_timing=on \
    -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=1000" start > /dev/null
  PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$port user=postkasse dbname=postkasse sslmode=disable")
  "$PGBIN/psql" -X -q "host=127.0.0.1 port=$port user=postkasse dbname=postgres sslmode=disable" -c 'CREATE DATABASE postkasse'
  "${PSQL[@]}" -c 'CREATE EXTENSION pg_stat_statements'
  DSN="host=127.0.0.1 port=$port user=postkasse dbname=postkasse sslmode=disable"
}

# cpu_ticks prints the CPU time (user + system, in clock ticks) the nodes
# and the database's processes have used so far, to see who had the cores.
cpu_ticks() {
  local nodes=0 db=0 pid
  ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
  for pid in "${PIDS[@]}"; do nodes=$((nodes + $(ticks "$pid"))); done
  if [ -f "$work/pg/data/postmaster.pid" ]; then
    local pm; pm=$(head -1 "$work/pg/data/postmaster.pid")
    for pid in "$pm" $(ps -o pid= --ppid "$pm"); do db=$((db + $(ticks "$pid"))); done
  fi
  echo "$nodes $db"
}

# reset_stats forgets the statements and WAL figures so far.
reset_stats() {
  [ "$STORE" != postgres ] || "${PSQL[@]}" -c "SELECT pg_stat_statements_reset(), pg_stat_reset_shared('wal')" > /dev/null
}

# top_statements prints the statements since the last reset by total time.
top_statements() {
  echo "== postgres: statements of the $1 scenario by total time (pg_stat_statements)"
  "${PSQL[@]}" -P pager=off -c "SELECT calls, round(total_exec_time) AS total_ms,
      round(mean_exec_time::numeric, 3) AS mean_ms, rows,
      left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'postkasse')
    ORDER BY total_exec_time DESC LIMIT 15"
  # A COMMIT's WAL flush happens after its statement is timed, so the
  # flushes are counted here instead.
  "${PSQL[@]}" -P pager=off -c "SELECT wal_records, pg_size_pretty(wal_bytes) AS wal, wal_write, wal_sync,
      round(wal_sync_time::numeric) AS wal_sync_ms, round((wal_sync_time / nullif(wal_sync, 0))::numeric, 3) AS ms_per_sync
    FROM pg_stat_wal"
  "${PSQL[@]}" -P pager=off -c "SELECT pg_size_pretty(pg_database_size('postkasse')) AS database_size"
}

PASS=bench-secret
HASH=$(echo "$PASS" | ./bin/postkasse passwd)
SIGN=()
if [ -n "$CHECKS" ]; then
  go build -o bin/benchdns ./cmd/benchdns
  DNS=127.0.0.1:$(port)
  ./bin/benchdns -listen "$DNS" -domain mailbench.invalid -key "$work/dkim.pem" 2> "$work/dns.log" &
  for _ in $(seq 1 100); do [ -s "$work/dkim.pem" ] && break; sleep 0.1; done
  SIGN=(-dkim-key "$work/dkim.pem" -dkim-selector mb)
fi
[ "$STORE" = postgres ] && start_postgres

# config NODE SMTP IMAP writes node NODE's configuration: the same for
# every node but for its addresses and data directory.
config() {
  cat <<CFG
hostname = "mail.contoso.test"
data_dir = "$work/data$1"
domains  = ["contoso.test"]
[listen]
smtp = "$2"
submission = ""
imap = "$3"
[limits]
user_quota = "1TB"
$([ "$CHECKS" = on ] && echo 'connections_per_ip = 20000  # every client is an outsider now')
CFG
  if [ "$STORE" = postgres ]; then
    printf '[store]\nbackend = "postgres"\ndsn = "%s"\n' "$DSN"
  fi
  if [ "$CHECKS" = on ]; then
    printf '[inbound]\ntrusted_networks = []\n[dns]\nresolver = "%s"\n' "$DNS"
  fi
  printf '[user.big]\naddress = "big@contoso.test"\npassword = "%s"\n' "$HASH"
  for i in $(seq 1 "$FANOUT"); do
    printf '[user.u%d]\naddress = "user%d@contoso.test"\npassword = "%s"\n' "$i" "$i" "$HASH"
  done
}

SMTPS=(); IMAPS=(); PIDS=()
for node in $(seq 1 "$NODES"); do
  SMTP=127.0.0.1:$(port); IMAP=127.0.0.1:$(port)
  config "$node" "$SMTP" "$IMAP" > "$work/config$node.toml"
  PROF=()
  [ -n "$PROFILE" ] && [ "$node" = 1 ] && PROF=(-cpuprofile "$PROFILE")
  ./bin/postkasse serve -config "$work/config$node.toml" "${PROF[@]}" 2> "$work/server$node.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/${SMTP%:*}/${SMTP#*:}) 2>/dev/null && break
    sleep 0.1
  done
  SMTPS+=("$SMTP"); IMAPS+=("$IMAP")
done
join() { local IFS=,; echo "$*"; }
SMTP_ALL=$(join "${SMTPS[@]}"); IMAP_ALL=$(join "${IMAPS[@]}")
SMTP1=${SMTPS[0]}; IMAPN=${IMAPS[-1]}; PIDN=${PIDS[-1]}

echo "postkasse $(git rev-parse --short HEAD 2>/dev/null || echo dev) on $(nproc) cores, $(date -u +%F)${CHECKS:+, inbound checks $CHECKS}, store $STORE, $NODES node(s)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if has smtp; then
  reset_stats
  read -r nodes0 db0 < <(cpu_ticks)
  t0=$(date +%s.%N)
  /usr/bin/time -f "mailbench: %U s user, %S s system" ./bin/mailbench smtp -smtp "$SMTP_ALL" -rcpt user1@contoso.test -n "$N" -c 32 -size 4096 \
    -imap "$IMAP_ALL" -user user1@contoso.test -pass "$PASS" "${SIGN[@]}"
  read -r nodes1 db1 < <(cpu_ticks)
  hz=$(getconf CLK_TCK)
  echo "CPU seconds in $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s of smtp: postkasse $(((nodes1 - nodes0) / hz))${DSN:+, postgres $(((db1 - db0) / hz))}"
  echo "load average after smtp: $(cut -d' ' -f1-3 /proc/loadavg)"
  [ "$STORE" = postgres ] && top_statements SMTP
fi
if has fanout; then
  reset_stats
  ./bin/mailbench fanout -smtp "$SMTP1" -imap "$IMAPN" -rcpt-pattern 'user%d@contoso.test' -count "$FANOUT" -pass "$PASS" "${SIGN[@]}"
  [ "$STORE" = postgres ] && top_statements fan-out
fi
if has fetch && [ "$STORE" = bbolt ]; then
  ./bin/mailbench fetch -imap "$IMAPN" -user big@contoso.test -pass "$PASS" -fill "$FILL" -repeat 5
fi
if has idle; then
  ./bin/mailbench idle -smtp "$SMTP1" -imap "$IMAPN" -user-pattern 'user%d@contoso.test' -conns "$CONNS" -pass "$PASS" -pid "$PIDN"
  ./bin/mailbench idle -smtp "$SMTP1" -imap "$IMAPN" -user-pattern 'user%d@contoso.test' -conns "$CONNS" -same-folder -pass "$PASS" -pid "$PIDN"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for pid in "${PIDS[@]}"; do kill -TERM "$pid"; done
for pid in "${PIDS[@]}"; do wait "$pid" || true; done
if [ "$CHECKS" = on ]; then
  echo "messages checked with spf, dkim and dmarc pass: $(cat "$work"/server*.log | grep -c 'auth="spf=pass dkim=pass(mailbench.invalid) dmarc=pass verdict=accept"' || true)"
fi
if [ -n "$PROFILE" ]; then
  echo "== cpu profile of node 1 (go tool pprof -top -cum $PROFILE)"
  go tool pprof -top -cum -nodecount=40 bin/postkasse "$PROFILE" 2>/dev/null
fi
