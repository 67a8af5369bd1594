#!/usr/bin/env bash
# Measures what a hot backup costs delivery: fills one folder with FILL
# messages, then runs the SMTP scenario twice, without and with
# `postkasse backup` running back to back for the whole run, and prints
# both rates. Usage: FILL=100000 N=10000 bench/backup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/postkasse ./cmd/postkasse
go build -o bin/mailbench ./cmd/mailbench

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
FILL=${FILL:-100000}; N=${N:-10000}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SMTP=127.0.0.1:$(port); IMAP=127.0.0.1:$(port)
PASS=bench-secret
HASH=$(echo "$PASS" | ./bin/postkasse passwd)
cat > "$work/config.toml" <<CFG
hostname = "mail.contoso.test"
data_dir = "$work/data"
domains  = ["contoso.test"]
[listen]
smtp = "$SMTP"
submission = ""
imap = "$IMAP"
[limits]
user_quota = "1TB"
[user.big]
address = "big@contoso.test"
password = "$HASH"
[user.u1]
address = "user1@contoso.test"
password = "$HASH"
CFG

start() {
  ./bin/postkasse serve -config "$work/config.toml" 2>> "$work/server.log" &
  PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/${SMTP%:*}/${SMTP#*:}) 2>/dev/null && break
    sleep 0.1
  done
}
start

echo "postkasse $(git rev-parse --short HEAD 2>/dev/null || echo dev) on $(nproc) cores, $(date -u +%F), fill $FILL, $N messages per run"
./bin/mailbench fetch -imap "$IMAP" -user big@contoso.test -pass "$PASS" -fill "$FILL" -repeat 1
ls -l "$work/data/mail.db"
# Start again, as a server in service opens a large store.
kill -TERM "$PID"; wait "$PID" || true
start
smtp() {
  ./bin/mailbench smtp -smtp "$SMTP" -rcpt user1@contoso.test -n "$N" -c 32 -size 4096 \
    -imap "$IMAP" -user user1@contoso.test -pass "$PASS"
}
echo "== without backup"
smtp
echo "== with backups back to back"
(
  n=0
  while [ ! -e "$work/stop" ]; do
    ./bin/postkasse backup -config "$work/config.toml" "$work/backup.db" >> "$work/backup.log" 2>&1
    n=$((n + 1))
  done
  echo "$n backups completed during the run" >> "$work/backup.log"
) &
LOOP=$!
smtp
touch "$work/stop"; wait "$LOOP"
cat "$work/backup.log"
kill -TERM "$PID"; wait "$PID" || true
