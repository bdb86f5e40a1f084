// A tensor of an .eqz file decoded to what `decompress` writes: compressed tensors (EntQuant codes or a baseline)
// as bf16, others as their stored bytes. Used by the engine's loader, verify and decompress.
#pragma once

#include "format/eqz.h"

#include <cstddef>
#include <vector>

namespace eq {

class ThreadPool;

// The tensor as it is written by decompress: bf16 for compressed tensors (dequantized codes), the original bytes
// otherwise. `dtype` receives the output dtype. Throws Error(Corrupt) naming the file and the tensor.
std::vector<std::byte> decodeTensor(const EqzFile& file, const EqzTensor& tensor, ThreadPool* pool, DType& dtype);

}  // namespace eq
