#!/usr/bin/env bash
# Set up napari-var-emitter and its test suite on a fresh Debian/Ubuntu machine (root, or a user with sudo).
#
#   1. the system libraries Qt and the virtual display need (xvfb, xcb, GL), when apt-get exists;
#   2. a project virtual environment in .venv/ (system Pythons on Debian 12 / Ubuntu 24.04 refuse pip, PEP 668);
#   3. PyTorch: the CUDA build where an NVIDIA GPU answers nvidia-smi, the CPU build elsewhere;
#   4. the package itself, editable, with its test extras (pytest, hatchling and build for the packaging test).
#
# Afterwards run everything through .venv/bin/ (or `source .venv/bin/activate`).
# Environment overrides: PYTHON (interpreter for the venv), VAR_EMITTER_TORCH=cpu|cuda|skip,
# VAR_EMITTER_EXTRAS (default "testing").
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
apt_install() {
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  apt_install xvfb xauth libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
    libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 libgl1 \
    libegl1 libfontconfig1
fi

# --- the virtual environment -------------------------------------------------------------------------------
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
  done
fi
if [ -z "$PYTHON" ]; then
  if command -v apt-get >/dev/null 2>&1; then apt_install python3 python3-venv; PYTHON=python3
  else echo "setup.sh: no python3 found; install Python >= 3.10 first" >&2; exit 1; fi
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    # Debian's python3 ships venv without ensurepip until python3-venv is installed.
    rm -rf .venv
    if command -v apt-get >/dev/null 2>&1; then apt_install python3-venv; fi
    "$PYTHON" -m venv .venv
  fi
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip

# --- PyTorch ------------------------------------------------------------------------------------------------
# A plain `pip install torch` on Linux pulls the CUDA build (several GB). Without an NVIDIA GPU we install the
# CPU build (+cpu): from PyTorch's CPU index or a local wheel, and the package index's build only as a fallback.
TORCH_VERSION="2.13.0"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"
flavour="${VAR_EMITTER_TORCH:-}"
if [ -z "$flavour" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then flavour=cuda; else flavour=cpu; fi
fi
if "$VPY" -c "import torch" >/dev/null 2>&1; then
  echo "setup.sh: torch $("$VPY" -c 'import torch; print(torch.__version__)') already in .venv; kept"
elif [ "$flavour" = "cuda" ]; then
  "$VPY" -m pip install -q "torch==$TORCH_VERSION"
elif [ "$flavour" = "cpu" ] && [ "$(uname -s)" = "Linux" ]; then
  # PyTorch's CPU index is an extra index: pip skips it with a warning when it cannot be reached, and a
  # local wheel (find-links) or the package index still serves the same +cpu build where they have it.
  "$VPY" -m pip install -q --retries 0 --extra-index-url "$TORCH_CPU_INDEX" "torch==$TORCH_VERSION+cpu" \
    || "$VPY" -m pip install -q "torch==$TORCH_VERSION"
elif [ "$flavour" != "skip" ]; then
  "$VPY" -m pip install -q "torch==$TORCH_VERSION"
fi

# --- the package --------------------------------------------------------------------------------------------
"$VPY" -m pip install -q -e ".[${VAR_EMITTER_EXTRAS:-testing}]"
"$VPY" -c "import torch; print('setup.sh: torch', torch.__version__, '| CUDA available:', torch.cuda.is_available())"
