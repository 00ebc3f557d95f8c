#!/usr/bin/env bash
# The whole test suite: sets up what it needs (system packages, venv, trained model),
# then runs pytest, including the PostgreSQL tests on a server the suite starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
