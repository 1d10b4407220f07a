#!/usr/bin/env bash
# System packages the test suite needs (Debian). Idempotent; skips apt when everything is present.
# prometheus (+ promtool): `cascade monitor up` and the alert-rule tests.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)  # tests/test_private.py: a second user's client
test -x /usr/bin/python3 || need+=(python3)  # tests/test_private.py: the second user's interpreter
command -v useradd >/dev/null 2>&1 || need+=(passwd)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d 101: the package's service must not start (cascade monitor runs Prometheus itself)
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
