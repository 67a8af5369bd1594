#!/usr/bin/env bash
# Times SELECT and UID SEARCH on a big folder (issue 11), first adding FILL
# corpus messages by APPEND (mailbench search -fill). The data directory
# is kept, so one fill serves several runs and binaries:
#
#   bench/search.sh DIR 100000            # fill to 100k, then measure
#   bench/search.sh DIR 200000            # add 200k more (300k), measure
#   POSTKASSE=/tmp/old/postkasse bench/search.sh DIR 0   # measure another build
#   TEXT=false bench/search.sh DIR 0      # leave out SEARCH TEXT and BODY
#
# A copy of DIR taken before a newer build opens it lets the older build
# measure the same folder: the newer one upgrades the store's records.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:?usage: bench/search.sh DIR FILL}; FILL=${2:-0}; REPEAT=${REPEAT:-3}; TEXT=${TEXT:-true}
go build -o bin/mailbench ./cmd/mailbench
if [ -z "${POSTKASSE:-}" ]; then go build -o bin/postkasse ./cmd/postkasse; POSTKASSE=bin/postkasse; fi
mkdir -p "$DIR"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SMTP=127.0.0.1:$(port); IMAP=127.0.0.1:$(port)
PASS=bench-secret
HASH=$(echo "$PASS" | "$POSTKASSE" passwd)
cat > "$DIR/config.toml" <<CFG
hostname = "mail.contoso.test"
data_dir = "$DIR/data"
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
CFG
"$POSTKASSE" serve -config "$DIR/config.toml" 2> "$DIR/server.log" &
PID=$!
for _ in $(seq 1 600); do
  (exec 3<>/dev/tcp/${IMAP%:*}/${IMAP#*:}) 2>/dev/null && break
  sleep 0.1
done
echo "$("$POSTKASSE" version 2>/dev/null || echo "$POSTKASSE") $(git rev-parse --short HEAD), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
./bin/mailbench search -imap "$IMAP" -user big@contoso.test -pass "$PASS" -fill "$FILL" -repeat "$REPEAT" -text="$TEXT"
echo "server RSS: $(grep VmRSS /proc/$PID/status)"
kill -TERM "$PID"; wait "$PID" || true
