#!/usr/bin/env bash
# Makes bench/.venv: a Python virtual environment for the benchmarks' Python peers (PyTorch for
# the training benchmark, numpy/pandas/pyarrow for the science peers). The venv ignores itself
# in git (bench/.venv/.gitignore). Installs through pip as this machine configures it (a local
# wheel store or an index); run it again to add what is missing, --force to rebuild.
#
# Usage: bash bench/setup-peer.sh [--force]
#   PYTHON=python3.11 bash bench/setup-peer.sh    # interpreter to build the venv from
# The peer runners (bench/torch-peer.ts, bench/science.ts) prefer bench/.venv/bin/python and fall back to
# Debian's /usr/bin/python3 with python3-torch.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"
packages=(torch numpy pandas pyarrow)

if [[ "${1:-}" == "--force" ]]; then rm -rf "$venv"; fi
if [[ ! -x "$venv/bin/python" ]]; then
  echo "setup-peer: creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv"
fi
# The venv is a build output: never committed.
echo '*' > "$venv/.gitignore"

missing=()
for p in "${packages[@]}"; do
  "$venv/bin/python" -c "import $p" 2>/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup-peer: installing ${missing[*]}"
  "$venv/bin/pip" install --disable-pip-version-check "${missing[@]}"
fi
"$venv/bin/python" - <<'EOF'
import numpy, pandas, pyarrow, torch
print(f"setup-peer: ready: torch {torch.__version__} ({torch.get_num_threads()} threads default), "
      f"numpy {numpy.__version__}, pandas {pandas.__version__}, pyarrow {pyarrow.__version__}")
EOF
