// AVX-512 kernels with VBMI (Ice Lake, Sapphire Rapids, Zen 4 and later): linear_avx512_impl.h.
#include "model/linear_avx512_impl.h"
