#!/usr/bin/env bash
# Installs that work anywhere: build a wheel from a copy of the checkout, install it into a fresh virtual
# environment that sees the packages of the environment running this script (a .pth file lists its site-packages,
# so torch is not downloaded again and no network is used, whether $PY is a venv's, conda's or a system Python) and
# run it from a folder outside the checkout: `ngp train --steps 5`, `ngp bench kernels --quick`, `ngp eval`. Fails
# when the package misses its configs, kernel sources or demo scene, or when the venv's ngp_app is not the wheel's.
set -euo pipefail
PY="${PY:-python3}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ngp-install.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
unset PYTHONPATH

echo "[install] building a wheel in $WORK"
mkdir -p "$WORK/src"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$WORK/src")
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src"
WHEEL="$(ls "$WORK"/dist/*.whl)"
"$PY" - "$WHEEL" <<'PYEOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["ngp_app/_resources/configs/base.json", "ngp_app/_resources/kernels/bindings.cpp",
        "ngp_app/_resources/scenes/demo/transforms_train.json"]
missing = [n for n in need if n not in names]
assert not missing, f"wheel lacks {missing}"
print(f"[install] wheel: {len(names)} files, configs, kernels and scenes/demo included")
PYEOF

"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
# --system-site-packages would expose the base interpreter's packages, not those of an active venv (issue 23):
# list the running environment's site folders in a .pth, after the venv's own, where the wheel goes
"$PY" -c 'import os, site
dirs = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
print("\n".join(d for d in dirs if os.path.isdir(d)))' >"$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ngp-parent-env.pth"
"$VPY" -m pip install -q --no-deps --no-index "$WHEEL"
mkdir -p "$WORK/elsewhere" && cd "$WORK/elsewhere"
"$VPY" - "$WORK" <<'PYEOF'
import sys
import ngp_app
from ngp_app import resources
assert ngp_app.__file__.startswith(sys.argv[1] + "/venv/"), f"imported {ngp_app.__file__}, not the installed wheel"
for p in (resources.config_dir() / "base.json", resources.kernels_dir() / "bindings.cpp", resources.demo_scene()):
    assert p.exists() and str(p).startswith(sys.argv[1] + "/venv/"), p
print(f"[install] resources under {resources.root()}")
PYEOF
NGP="$WORK/venv/bin/ngp"
"$NGP" --threads 2 train --steps 5 --out run --config small --downscale 8 --quiet
"$NGP" --threads 2 bench kernels --quick --no-train
"$NGP" --threads 2 eval run/snapshot.npz "$("$VPY" -c 'from ngp_app import resources; print(resources.demo_scene())')" \
  --downscale 8 --quiet
echo "[install] ok: wheel installed in a fresh venv, train / bench kernels / eval ran outside the checkout"
