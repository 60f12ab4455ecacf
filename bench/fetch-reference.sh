#!/usr/bin/env bash
# Fetches the public PyTorch reference, ttt-lm-pytorch's ttt.py, at the commit the parity fixtures and the speed
# figures were made with, into a cache folder (default ~/.cache/ttt-workbench/reference), and prints its path.
# It is never committed here: it is the authors' code, and the comparison must run their file as published.
#   bench/fetch-reference.sh [CACHE_DIR]
set -euo pipefail
commit=cd831db10c8c9a0f6340f02da5613316a8a92b67
cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/ttt-workbench/reference}
out="$cache/ttt-lm-pytorch-${commit:0:7}/ttt.py"
if [ ! -s "$out" ]; then
  mkdir -p "$(dirname "$out")"
  url="https://raw.githubusercontent.com/test-time-training/ttt-lm-pytorch/$commit/ttt.py"
  if ! curl -fsSL "$url" -o "$out.part"; then
    rm -f "$out.part"
    echo "fetch-reference: could not download $url (no network?); put ttt.py there yourself: $out" >&2
    exit 1
  fi
  mv "$out.part" "$out"
fi
echo "$out"
