#!/usr/bin/env bash
# Compile every kernels/cuda/*.cu with nvcc for sm_80 and sm_90 (ptxas -v prints registers and spills); fails on
# any compile error. Skips (exit 0) when nvcc is absent. Needs no GPU and no torch.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nvcc="${NVCC:-$(command -v nvcc || true)}"
if [[ -z "$nvcc" && -x /usr/local/cuda/bin/nvcc ]]; then nvcc=/usr/local/cuda/bin/nvcc; fi
if [[ -z "$nvcc" ]]; then
    echo "check_cuda: nvcc not found; skipping the CUDA compile check"
    exit 0
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
status=0
for arch in sm_80 sm_90; do
    for cu in "$root"/kernels/cuda/*.cu; do
        name="$(basename "$cu" .cu)"
        echo "== $name.cu ($arch)"
        if ! "$nvcc" -std=c++17 -O3 --expt-relaxed-constexpr -DNGP_WITH_CUDA -arch="$arch" \
            -Xptxas -v -I"$root/kernels/include" -c "$cu" -o "$out/$name-$arch.o" 2>&1 |
            grep -E "error|warning|registers|spill|Compiling entry" ; then
            :
        fi
        if [[ ! -f "$out/$name-$arch.o" ]]; then
            echo "check_cuda: FAILED $name.cu ($arch)"
            status=1
        fi
    done
done

# The op bindings with CUDA dispatch (-DNGP_WITH_CUDA): a syntax check with g++ against torch's headers, when python
# has torch and the CUDA runtime headers are found. CPU wheels lack one generated c10 header: stub it.
cuda_inc=""
for d in "${CUDA_HOME:-}" /usr/local/cuda /usr/local/cuda-*; do
    if [[ -n "$d" && -f "$d/include/cuda_runtime_api.h" ]]; then cuda_inc="$d/include"; break; fi
done
torch_inc="$(python -c 'import torch.utils.cpp_extension as c; print(" ".join("-I" + p for p in c.include_paths()))' 2>/dev/null || true)"
if [[ -n "$cuda_inc" && -n "$torch_inc" ]] && command -v g++ >/dev/null; then
    mkdir -p "$out/stub/c10/cuda/impl" && touch "$out/stub/c10/cuda/impl/cuda_cmake_macros.h"
    echo "== bindings.cpp (-DNGP_WITH_CUDA, syntax only)"
    # shellcheck disable=SC2086
    if ! g++ -std=c++20 -fsyntax-only -DNGP_WITH_CUDA -I"$root/kernels/include" -I"$out/stub" $torch_inc \
        -I"$cuda_inc" "$root/kernels/bindings.cpp"; then
        echo "check_cuda: FAILED bindings.cpp with CUDA dispatch"
        status=1
    fi
else
    echo "check_cuda: torch or CUDA headers not found; skipping the bindings check"
fi
[[ $status -eq 0 ]] && echo "check_cuda: all kernels compiled for sm_80 and sm_90"
exit $status
