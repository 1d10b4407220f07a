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
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)  # the AGP report test renders the PDF
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
# The stack profile's tests (tests/contract, tests/stack) start Nessie and Trino (Java 24+; Temurin 25
# is on the CI image) and build versitygw once (Go >= 1.24; /usr/local/go on the CI image). Neither is
# in Debian 12, so check and say what is missing instead of failing later.
java_ok=""
for jdk in "${CASCADE_JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-25-jdk; do
  if [ -n "$jdk" ] && [ -x "$jdk/bin/java" ]; then java_ok=$jdk; break; fi
done
if [ -z "$java_ok" ]; then
  echo "system-deps: the stack tests need a Java 24+ JDK (Temurin 25); set CASCADE_JAVA_HOME" >&2
  exit 1
fi
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ] && \
   [ ! -x "${CASCADE_STACK_CACHE:-$HOME/.cache/cascade/stack}/bin/versitygw-v1.7.0" ]; then
  echo "system-deps: building versitygw for the stack tests needs Go >= 1.24 (e.g. /usr/local/go)" >&2
  exit 1
fi
