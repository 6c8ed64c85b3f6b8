#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv.
# torch is installed first and on purpose: MEDGAN_TORCH picks the build.
#   default            torch==2.13.0   (on this project's machines: a small CPU wheel)
#   MEDGAN_TORCH=torch                  latest torch from PyPI (Linux: CUDA build)
#   MEDGAN_TORCH_INDEX=<url>            extra pip index, e.g. PyTorch's CUDA or CPU wheel index
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
venv=${MEDGAN_VENV:-.venv}
torch_spec=${MEDGAN_TORCH:-torch==2.13.0}

[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
stamp="$venv/.medgan-setup"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $torch_spec"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
log="$venv/setup.log"
echo "Setting up the Python environment in $venv (log: $log) ..."
pipi() {
  "$venv/bin/python" -m pip install --disable-pip-version-check "$@" >>"$log" 2>&1 || {
    tail -n 30 "$log" >&2; echo "error: pip install $* failed (full log: $log)" >&2; exit 1; }
}
pipi --upgrade pip
if [ -n "${MEDGAN_TORCH_INDEX:-}" ]; then
  pipi "$torch_spec" --extra-index-url "$MEDGAN_TORCH_INDEX"
else
  pipi "$torch_spec"
fi
pipi -e ".[test]"
echo "$want" > "$stamp"
