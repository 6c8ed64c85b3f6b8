#!/usr/bin/env bash
# One command: set up everything and open MedGAN Studio on the built-in demo study.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh gui
bash scripts/setup.sh
exec .venv/bin/python main.py --demo "$@"
