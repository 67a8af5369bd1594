#!/usr/bin/env bash
# Measures what the inbound checks (SPF, DKIM, DMARC) cost the accept rate:
# PAIRS times, a fresh server with the checks off and a fresh server with
# them on take the same N DKIM-signed messages over 32 connections, one
# after the other, so both halves of a pair meet the same machine. Prints
# each rate and the ratio on/off of each pair.
# Usage: bench/checks.sh [PAIRS] [N]   (defaults: 5 pairs of 20,000)
#
# Off and on differ only in what the server does with mail from loopback:
# off, loopback is a trusted network, so nothing is checked; on, nothing is
# trusted, and SPF, DKIM (RSA-2048, as most senders sign) and DMARC are
# checked for every message against cmd/benchdns on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-5}; N=${2:-20000}
go build -o bin/postkasse ./cmd/postkasse
go build -o bin/mailbench ./cmd/mailbench
go build -o bin/benchdns ./cmd/benchdns

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PASS=bench-secret
HASH=$(echo "$PASS" | ./bin/postkasse passwd)
DNS=127.0.0.1:$(port)
./bin/benchdns -listen "$DNS" -domain mailbench.invalid -key "$work/dkim.pem" 2> "$work/dns.log" &
for _ in $(seq 1 100); do [ -s "$work/dkim.pem" ] && break; sleep 0.1; done

# run MODE prints the accept rate of one fresh server with the checks MODE.
run() {
  local mode=$1 smtp imap
  smtp=127.0.0.1:$(port); imap=127.0.0.1:$(port)
  rm -rf "$work/data"
  {
    cat <<CFG
hostname = "mail.contoso.test"
data_dir = "$work/data"
domains  = ["contoso.test"]
[listen]
smtp = "$smtp"
submission = ""
imap = "$imap"
[limits]
user_quota = "1TB"
connections_per_ip = 20000
[dns]
resolver = "$DNS"
[user.u1]
address = "user1@contoso.test"
password = "$HASH"
CFG
    if [ "$mode" = on ]; then printf '[inbound]\ntrusted_networks = []\n'; fi
  } > "$work/config.toml"
  ./bin/postkasse serve -config "$work/config.toml" 2> "$work/server-$mode.log" &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "postkasse ready" "$work/server-$mode.log" && break; sleep 0.1; done
  ./bin/mailbench smtp -smtp "$smtp" -rcpt user1@contoso.test -n "$N" -c 32 -size 4096 \
    -imap "$imap" -user user1@contoso.test -pass "$PASS" \
    -dkim-key "$work/dkim.pem" -dkim-selector mb > "$work/out-$mode.txt"
  kill -TERM "$pid"; wait "$pid" || true
  if [ "$mode" = on ] && ! grep -q 'dkim=pass(mailbench.invalid) dmarc=pass' "$work/server-on.log"; then
    echo "checks did not pass: see the server log" >&2; tail -5 "$work/server-on.log" >&2; exit 1
  fi
  awk -F'  +' '/visible over IMAP per second/ {print $NF}' "$work/out-$mode.txt"
}

echo "postkasse $(git rev-parse --short HEAD 2>/dev/null || echo dev) on $(nproc) cores, $(date -u +%F), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "pair  off/s  on/s  on/off"
for i in $(seq 1 "$PAIRS"); do
  off=$(run off); on=$(run on)
  printf '%4d %6s %5s  %.3f\n' "$i" "$off" "$on" "$(echo "$on / $off" | bc -l)"
done
