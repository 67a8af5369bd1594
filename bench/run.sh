#!/usr/bin/env bash
# Runs mailbench's four scenarios against a freshly started postkasse with
# 1,000 users, on loopback, and prints the figures BENCHMARKS.md records.
# Usage: bench/run.sh [quick]   (quick: smaller numbers, for a smoke test)
#
# CHECKS=on bench/run.sh quick: the mail comes from outside, as on the MX
# port of the internet: no trusted networks, every message DKIM-signed by
# the sending domain, whose SPF, DKIM and DMARC records cmd/benchdns serves
# on loopback through [dns] resolver; SPF, DKIM and DMARC are checked for
# every message. CHECKS=off: the same signed messages and DNS server, but
# loopback trusted, so nothing is checked: the pair measures the checks.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/postkasse ./cmd/postkasse
go build -o bin/mailbench ./cmd/mailbench
CHECKS=${CHECKS:-}

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

N=20000; FANOUT=1000; FILL=100000; CONNS=1000
if [ "${1:-}" = quick ]; then N=2000; FANOUT=100; FILL=2000; CONNS=100; fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SMTP=127.0.0.1:$(port); IMAP=127.0.0.1:$(port)
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

{
  cat <<CFG
hostname = "mail.contoso.test"
data_dir = "$work/data"
domains  = ["contoso.test"]
[listen]
smtp = "$SMTP"
submission = ""
imap = "$IMAP"
[limits]
user_quota = "1TB"
$([ "$CHECKS" = on ] && echo 'connections_per_ip = 20000  # every client is an outsider now')
[user.big]
address = "big@contoso.test"
password = "$HASH"
CFG
  if [ "$CHECKS" = on ]; then
    printf '[inbound]\ntrusted_networks = []\n[dns]\nresolver = "%s"\n' "$DNS"
  fi
  for i in $(seq 1 "$FANOUT"); do
    printf '[user.u%d]\naddress = "user%d@contoso.test"\npassword = "%s"\n' "$i" "$i" "$HASH"
  done
} > "$work/config.toml"

./bin/postkasse serve -config "$work/config.toml" 2> "$work/server.log" &
PID=$!
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/${SMTP%:*}/${SMTP#*:}) 2>/dev/null && break
  sleep 0.1
done

echo "postkasse $(git rev-parse --short HEAD 2>/dev/null || echo dev) on $(nproc) cores, $(date -u +%F)${CHECKS:+, inbound checks $CHECKS}"
./bin/mailbench smtp -smtp "$SMTP" -rcpt user1@contoso.test -n "$N" -c 32 -size 4096 \
  -imap "$IMAP" -user user1@contoso.test -pass "$PASS" "${SIGN[@]}"
./bin/mailbench fanout -smtp "$SMTP" -imap "$IMAP" -rcpt-pattern 'user%d@contoso.test' -count "$FANOUT" -pass "$PASS" "${SIGN[@]}"
./bin/mailbench fetch -imap "$IMAP" -user big@contoso.test -pass "$PASS" -fill "$FILL" -repeat 5
./bin/mailbench idle -smtp "$SMTP" -imap "$IMAP" -user-pattern 'user%d@contoso.test' -conns "$CONNS" -pass "$PASS" -pid "$PID"
./bin/mailbench idle -smtp "$SMTP" -imap "$IMAP" -user-pattern 'user%d@contoso.test' -conns "$CONNS" -same-folder -pass "$PASS" -pid "$PID"
kill -TERM "$PID"; wait "$PID" || true
if [ "$CHECKS" = on ]; then
  echo "messages checked with spf, dkim and dmarc pass: $(grep -c 'auth="spf=pass dkim=pass(mailbench.invalid) dmarc=pass verdict=accept"' "$work/server.log" || true)"
fi
