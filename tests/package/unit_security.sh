#!/usr/bin/env bash
# The systemd unit's sandbox, as systemd rates it: `systemd-analyze security` on the unit
# file generated from config/systemd/ctxd@.service.in must be "OK" or better (an overall
# exposure of at most 4.9 of 10).
#   tests/package/unit_security.sh UNIT_FILE
set -euo pipefail
unit=$1
out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || {
  echo "$out" >&2
  echo "FAIL: systemd-analyze security could not rate $unit" >&2
  exit 1
}
line=$(grep 'Overall exposure level' <<<"$out") || { echo "$out" >&2; echo "FAIL: no rating" >&2; exit 1; }
echo "$line"
# "→ Overall exposure level for ctxd@i.service: 1.4 OK 🙂"
read -r exposure rating < <(sed -E 's/.*: ([0-9]+\.[0-9]) ([A-Z]+).*/\1 \2/' <<<"$line")
if [[ ! $rating =~ ^(PERFECT|SAFE|OK)$ ]] || ((${exposure/./} > 49)); then
  grep '✗' <<<"$out" >&2 || true
  echo "FAIL: $unit rated $exposure $rating, not OK or better" >&2
  exit 1
fi
