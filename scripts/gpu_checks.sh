#!/usr/bin/env bash
# Everything that needs a GPU, in one call (a lent GPU machine's time is short): CUDA parity tests, kernel, render
# and training benchmarks. Writes results under ${OUT:-gpu-results}; paste them into docs/benchmarks.md with the
# card's name. Works from a plain checkout (no install): the package is used from the source tree.
#   bash scripts/gpu_checks.sh            # under 8 minutes on an H100 (first build of the extension included)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if ! python -c "import ninja" 2>/dev/null && ! command -v ninja >/dev/null; then
    echo "gpu_checks: the native build needs ninja (carry its wheel)" >&2
fi
{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
    python -c "import tinycudann" 2>/dev/null && echo "tinycudann: installed" || echo "tinycudann: not installed"
} 2>&1 | tee "$OUT/gpu.txt"

status=0
run() {  # run NAME CMD...: log to $OUT/NAME.txt, remember failures, go on with the rest
    local name=$1; shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$OUT/$name.txt"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || { echo "== $name failed with $rc"; status=1; }
}

run pytest-cuda python -m pytest -q -m cuda tests -p no:cacheprovider
run bench-kernels python -m ngp_app bench kernels --device cuda
run bench-step python -m ngp_app bench step --device cuda --json
run train-demo python -m ngp_app train scenes/demo --out "$OUT/demo" --device cuda --steps 5000 --eval --quiet
run train-demo-fp16 python -m ngp_app train scenes/demo --out "$OUT/demo16" --device cuda --steps 5000 --eval \
    --table-precision float16 --quiet
# the default MLP precision on CUDA is float16 (network.precision auto): the same run with float32 MLPs to compare
run train-demo-mlp32 python -m ngp_app train scenes/demo --out "$OUT/demo-mlp32" --device cuda --steps 5000 --eval \
    --mlp-precision float32 --quiet
run bench-render python -m ngp_app bench render --snapshot "$OUT/demo/snapshot.npz" --devices cuda
rm -rf "$OUT/demo/snapshot.npz" "$OUT/demo16/snapshot.npz" "$OUT/demo-mlp32/snapshot.npz"  # large; metrics.json stays
exit $status
