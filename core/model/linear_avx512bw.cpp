// AVX-512 kernels without VBMI (AVX512F/BW/VL: Skylake-SP, Cascade Lake, Cooper Lake): linear_avx512_impl.h with
// the FP8 decoder that goes through f16.
#define EQ_AVX512_NO_VBMI
#include "model/linear_avx512_impl.h"
