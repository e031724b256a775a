#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need when it is missing (Debian's
# redis-server, python3-requests and chromium, the npm packages), builds, type-checks, then runs
# tap. Each test file starts and stops its own redis-server, Label Studio stand-in and gateway; the
# browser test drives /usr/bin/chromium with playwright-core.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null || missing+=(redis-server redis-tools)
command -v openssl >/dev/null || missing+=(openssl)
/usr/bin/python3 -c 'import requests' 2>/dev/null || missing+=(python3-requests)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test: missing ${missing[*]}; install them with apt-get (as root) and run again" >&2
    exit 1
  fi
  echo "test: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

npm run --silent build
npx tsc --noEmit -p tsconfig.json
npx eslint .
npx tap "$@"
