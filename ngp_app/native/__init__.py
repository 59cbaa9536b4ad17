"""Native (C++/CUDA) kernels from ``kernels/``, built on first use with torch.utils.cpp_extension."""
