#!/usr/bin/env bash
# `npm test`'s pretest: the tap suite starts real parts (redis-server, redis-sentinel, prometheus, promtool, a headless
# chromium for the console, script(1) for a pseudo-terminal, openssl for a TLS Redis's certificate) and never skips for want of one. On Debian as root, what is missing is
# installed; otherwise this stops with the exact command to run.
set -euo pipefail

# command -> the Debian package that has it
commands=(redis-server redis-sentinel prometheus promtool chromium script openssl)
package_of () {
  case "$1" in
    redis-server) echo redis-server ;;
    redis-sentinel) echo redis-sentinel ;;
    prometheus|promtool) echo prometheus ;;
    chromium) echo chromium ;;
    script) echo bsdutils ;;
    openssl) echo openssl ;;
  esac
}

missing=()
packages=()
for c in "${commands[@]}"; do
  if ! command -v "$c" >/dev/null 2>&1; then
    missing+=("$c")
    p=$(package_of "$c")
    [[ " ${packages[*]-} " == *" $p "* ]] || packages+=("$p")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

install="apt-get update && apt-get install -y --no-install-recommends ${packages[*]}"
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "pretest: ${missing[*]} missing; installing ${packages[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  # the Debian packages may start their own services; the tests start their own on their own ports
  for s in redis-server redis-sentinel prometheus; do
    { systemctl stop "$s" || service "$s" stop; } >/dev/null 2>&1 || true
  done
  exit 0
fi

{
  echo "npm test needs ${missing[*]} (the tests start real ones; none is skipped). Install them:"
  if command -v apt-get >/dev/null 2>&1; then
    echo "  sudo sh -c '$install'"
  else
    echo "  on Debian or Ubuntu: sudo sh -c '$install'"
    echo "  elsewhere: redis-server and redis-sentinel (Redis >= 6), prometheus and promtool, chromium, script (util-linux), openssl from your package manager"
  fi
} >&2
exit 1
