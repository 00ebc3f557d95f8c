#!/usr/bin/env bash
# Set up (if needed) and run the demo outbound campaign: 30 simulated customers with mixed
# behaviours are called (real Rasa, Vosk and the neural voice), simulated agents take the
# transfers, and the campaign's HTML report is written under var/reports/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/offercall campaign demo "$@"
