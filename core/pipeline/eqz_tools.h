// Reading .eqz files back: verify (every checksum and a full decode) and decompress to
// a HuggingFace folder (compressed tensors as bf16, others in their dtype, plus the embedded model files).
#pragma once

#include "common/progress.h"
#include "format/eqz.h"
#include "pipeline/compress.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <vector>

namespace eq {

class ThreadPool;

struct VerifyReport {
  std::size_t sections = 0, tensorsDecoded = 0;
  std::uint64_t bytesChecked = 0;
  double seconds = 0;
};

// Checks every section's xxHash3, then decodes every compressed tensor. Throws Error(Corrupt) naming the first
// bad section, e.g. "m.eqz: section \"stream\" of tensor \"x\" fails its checksum".
// progress: Phase::Verify, one unit per compressed tensor decoded.
VerifyReport verifyEqz(const EqzFile& file, ThreadPool& pool, const KeepGoingFn& keepGoing = {},
                       const ProgressFn& progress = {});

// What compress measured for each tensor, read back from the file's index (no decoding): encoding, stored bytes,
// effective and entropy bits, lambda, distinct codes, relative errors, sensitivity. Kept tensors have only the first
// ones. Values the index lacks (a hand-edited file) are 0.
std::vector<TensorReport> eqzTensorReports(const EqzFile& file);

struct DecompressReport {
  std::size_t tensors = 0, files = 0;
  std::uint64_t bytes = 0;
  double seconds = 0;
};

// Writes DIR/model.safetensors and the embedded files. DIR must not exist or be empty; the folder is built next to
// it and renamed into place, so a failure leaves nothing.
// progress: Phase::Decompress, one unit per tensor.
DecompressReport decompressEqz(const EqzFile& file, const std::filesystem::path& dir, ThreadPool& pool,
                               const KeepGoingFn& keepGoing = {}, const ProgressFn& progress = {});

}  // namespace eq
