#!/usr/bin/env bash
# Starts what the test suite needs when it is not running: PostgreSQL (the CI database), the real Asterisk 22,
# Debian's chromium for the browser test, espeak-ng and sox for the prompts. Idempotent; quiet when all is there.
set -euo pipefail

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
fi
pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || echo "warning: PostgreSQL is not reachable; its tests will be skipped" >&2

if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: chromium could not be installed; the browser test will be skipped" >&2
fi

# A Chinese font: without one chromium draws the (default, Chinese) view's text as boxes in the screenshots
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ] && [ "$(id -u)" = 0 ] \
    && command -v apt-get >/dev/null 2>&1; then
  echo "installing a Chinese font (fonts-wqy-microhei) for the browser test's screenshots"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null) \
    || echo "warning: no Chinese font could be installed; screenshots of the view will show boxes" >&2
fi

# Debian's offline speech synthesizer and sox: `hotline menus prompts --generate` and its tests (they skip without)
if { ! command -v espeak-ng >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1; } && [ "$(id -u)" = 0 ] \
   && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's espeak-ng and sox for the prompt tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends espeak-ng sox \
     >/dev/null) || echo "warning: espeak-ng/sox could not be installed; the prompt synthesis tests will be skipped" >&2
fi

# The real Asterisk 22 the tests marked `asterisk` run on (../shared/asterisk-22 beside the project, or an
# install named by HOTLINE_TEST_ASTERISK). Without it those tests skip and say how to get one.
ASTERISK_KIT="$(cd "$(dirname "$0")/.." && pwd)/../shared/asterisk-22"
if [ -z "${HOTLINE_TEST_ASTERISK:-}" ] && [ ! -x /opt/asterisk-22/sbin/asterisk ] && [ -f "$ASTERISK_KIT/install.sh" ] \
   && [ "$(id -u)" = 0 ]; then
  echo "installing Asterisk 22 for the integration tests"
  bash "$ASTERISK_KIT/install.sh" >/dev/null || echo "warning: Asterisk 22 could not be installed; the asterisk tests will be skipped" >&2
fi
