#!/usr/bin/env bash
# Set up (Debian packages, .venv) and run the demo: sample dossiers, kiosk and SMS gateway on
# simulated hardware, everything inside ./demo-data. Open http://127.0.0.1:8080/ ; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/kiosk demo --data-dir demo-data "$@"
