// Launch helpers shared by the CUDA launchers (no torch headers: raw pointers and a cudaStream_t passed as void*).
#pragma once

#include <cuda_runtime.h>

#include "ngp/launchers.h"

namespace ngp {
namespace cuda {

constexpr int kThreads = 128;

inline unsigned int blocks_for(int64_t n) { return (unsigned int)((n + kThreads - 1) / kThreads); }

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace cuda
}  // namespace ngp
