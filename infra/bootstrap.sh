#!/usr/bin/env bash
# Installs the system packages renkou's local stack needs, when they are missing: Python 3.11+ with venv,
# a Java 17+ runtime and Maven (to fetch and run Kafka's jars), PostgreSQL's server binaries, and headless
# Chromium with its driver for the report's rendering test and the console's browser tests.
# Idempotent and quiet when everything is there. Installs only as root (Debian/apt); otherwise says what to install.
set -euo pipefail

need=()
have_python() {
  local py
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      return 0
    fi
  done
  return 1
}
have_java() {
  command -v java >/dev/null 2>&1 || return 1
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  [ -n "$v" ] && [ "$v" -ge 17 ]
}
have_pg() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

have_python || need+=(python3 python3-venv python3-pip)
have_java || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
have_pg || need+=(postgresql)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
# Headless Chromium renders the yearly report's HTML in a test (a screenshot), and the console's browser tests drive
# it through ChromeDriver (Debian's, matching the browser: no browser or driver is ever downloaded).
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# ...with a CJK font, or district names in the rendered report are boxes.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "renkou needs these system packages, please install them: ${need[*]}" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}"
# Our PostgreSQL cluster lives in the project folder; do not let the package create and start a system one.
mkdir -p /etc/postgresql-common
[ -f /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${need[@]}" >/dev/null
