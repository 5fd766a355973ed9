#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine (as root, or with sudo) for napari-var-emitter and its test suite:
# the system libraries Qt and the virtual display need, the CPU build of PyTorch, then the package itself.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq xvfb xauth libxkbcommon-x11-0 libxcb-icccm4 \
    libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 \
    libxcb-shape0 libxcb-cursor0 libdbus-1-3 libgl1 libegl1 libfontconfig1 >/dev/null
fi
# Install the CPU build of torch first: an unpinned torch would pull several GB of CUDA packages.
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[testing]"
