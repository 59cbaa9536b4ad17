#!/usr/bin/env bash
# System packages the GUI tests need (Xvfb, Mesa's software OpenGL, xdotool for a person's clicks, keys and window
# moves); installed only when missing.
set -uo pipefail
need=()
command -v xvfb-run >/dev/null 2>&1 || need+=(xvfb xauth)
command -v xdotool >/dev/null 2>&1 || need+=(xdotool)
[[ -e /usr/lib/x86_64-linux-gnu/dri/swrast_dri.so || -e /usr/lib/aarch64-linux-gnu/dri/swrast_dri.so ]] || need+=(libgl1-mesa-dri)
if (( ${#need[@]} )); then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    echo "[ci] installing ${need[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null 2>&1 \
      || echo "[ci] could not install ${need[*]}: GUI tests will be skipped"
  else
    echo "[ci] missing ${need[*]} and cannot install them: GUI tests will be skipped"
  fi
fi
