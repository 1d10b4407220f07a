#!/usr/bin/env bash
# System packages the test suite needs (Debian). Idempotent; skips apt when everything is present.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)  # tests/test_private.py: a second user's client
test -x /usr/bin/python3 || need+=(python3)  # tests/test_private.py: the second user's interpreter
command -v useradd >/dev/null 2>&1 || need+=(passwd)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
