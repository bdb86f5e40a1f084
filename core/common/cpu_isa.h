// Which SIMD instruction set the CPU kernels use (the engine's matrix products, the calibration's Gram products):
// one process-wide choice, made at run time, so that a build for every x86-64-v3 CPU still uses AVX-512 where the
// CPU has it.
#pragma once

#include <string_view>

namespace eq {

// The instruction set of the CPU kernels (model/linear.h, quant/error_feedback.h), process-wide. Chosen at first
// use: the best the CPU supports, or the one named by the environment variable ENTQUANT_ISA (generic, avx2, avx512bw
// avx512 or amx) when the CPU has it.
// Avx512: AVX512F/BW/VL/VBMI (Ice Lake, Sapphire Rapids, Zen 4 and later); Avx512Bw: the same kernels with an FP8
// decoder that needs no VBMI (Skylake-SP, Cascade Lake, Cooper Lake); Amx: the Avx512 kernels, and AMX tiles
// (AMX-TILE, AMX-BF16, with AVX512-BF16: Sapphire Rapids and later Xeons) for the multi-token GEMM, where the
// operating system grants the process their state.
enum class KernelIsa : int { Generic, Avx2, Avx512, Avx512Bw, Amx };
KernelIsa kernelIsa();
bool kernelIsaSupported(KernelIsa isa);
// Switches the kernels (tests and benchmarks compare them); false, and no change, where the CPU lacks `isa`.
// Not while a forward pass runs.
bool setKernelIsa(KernelIsa isa);
std::string_view kernelIsaName(KernelIsa isa);

}  // namespace eq
