#include "model/kv_cache.h"

#include "common/error.h"

namespace eq::model {

void KvCache::allocate() {
  k_.assign(static_cast<std::size_t>(layers_ * context_ * width_), 0.0f);
  v_.assign(k_.size(), 0.0f);
}

std::uint64_t KvCache::batchBytes(std::int64_t sequences) const {
  return 8ull * static_cast<std::uint64_t>(sequences) * static_cast<std::uint64_t>(layers_) *
         static_cast<std::uint64_t>(context_) * static_cast<std::uint64_t>(width_);
}

void KvCache::beginBatch(std::int64_t sequences) {
  if (sequences < 1) fail(Errc::InvalidArgument, "a batch needs at least one sequence, got {}", sequences);
  batch_ = sequences;
  const std::size_t floats = static_cast<std::size_t>(batchBytes(sequences) / 8);
  kBatch_.assign(floats, 0.0f);
  vBatch_.assign(floats, 0.0f);
}

void KvCache::endBatch() {
  std::vector<float>().swap(kBatch_);
  std::vector<float>().swap(vBatch_);
  batch_ = 0;
}

}  // namespace eq::model
