#!/usr/bin/env bash
# Measures what the inbound checks (SPF, DKIM, DMARC) cost the accept rate:
# PAIRS times, bench/run.sh's SMTP scenario with CHECKS=off and then with
# CHECKS=on, each on a fresh server, so both halves of a pair meet the same
# machine. Prints each rate and the ratio on/off of each pair.
# Usage: bench/checks.sh [PAIRS] [quick]   (defaults: 5 pairs of 20,000
# messages; quick: 2,000)
#
# Off and on differ only in what the server does with mail from loopback
# (see bench/run.sh): off, loopback is trusted, so nothing is checked; on,
# nothing is trusted, and SPF, DKIM (RSA-2048, as most senders sign) and
# DMARC are checked for every message against cmd/benchdns on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-5}
SIZE=${2:-}

# rate MODE prints the accepted-and-visible rate of one run.
rate() {
  local out
  out=$(CHECKS=$1 SCENARIOS=smtp bench/run.sh $SIZE)
  if [ "$1" = on ] && ! grep -q 'checked with spf, dkim and dmarc pass: [1-9]' <<< "$out"; then
    echo "the checks did not pass:" >&2; echo "$out" >&2; exit 1
  fi
  awk -F'  +' '/visible over IMAP per second/ {print $NF}' <<< "$out"
}

echo "postkasse $(git rev-parse --short HEAD 2>/dev/null || echo dev) on $(nproc) cores, $(date -u +%F), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "pair  off/s  on/s  on/off"
for i in $(seq 1 "$PAIRS"); do
  off=$(rate off); on=$(rate on)
  printf '%4d %6s %5s  %.3f\n' "$i" "$off" "$on" "$(echo "$on / $off" | bc -l)"
done
