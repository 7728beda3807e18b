#!/usr/bin/env bash
# CI shows only the tail of a run: after a failed `npm test`, print every failed assertion with the
# start of its YAML block (message, diff, location), then, last, one line per failure naming its
# test file, so even a short tail says which test failed and why
set -uo pipefail
log="$1"
awk '
  /^# Subtest: test\// { file = $3 }
  /^[[:space:]]*not ok / {
    n++; names[n] = file ": " $0; sub(/^[[:space:]]*/, "", names[n])
    print "--- in " file; printing = 1; shown = 0; indent = match($0, /[^ ]/); print; next
  }
  printing {
    if (++shown <= 25) print
    else if (shown == 26) print "    [... cut]"
    if ($0 ~ /^[[:space:]]*\.\.\.$/ && match($0, /[^ ]/) <= indent + 2) printing = 0
  }
  END {
    print "=== " n " failed assertion(s), by test file:"
    for (i = 1; i <= n; i++) print names[i]
  }
' "$log" | tail -n 150
