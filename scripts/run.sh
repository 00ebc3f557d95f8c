#!/usr/bin/env bash
# Set up (if needed) and run offercall: Rasa server, action server and web server on
# SQLite, then a terminal chat with the sample customer C0001 (Ctrl-D ends everything).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/offercall run "$@"
