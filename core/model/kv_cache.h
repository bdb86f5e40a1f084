// The engine's KV cache: float32 keys and values of every layer for up to `context` positions of one sequence,
// and, for a batch of independent sequences run in lockstep (CausalLM::beginBatch), one such cache per sequence.
#pragma once

#include <cstdint>
#include <vector>

namespace eq::model {

class KvCache {
 public:
  // For layers x context x width floats of keys and as many of values (width = KV heads x head_dim); nothing is
  // allocated until allocate() (the engine checks the weights against the config first).
  KvCache(std::int64_t layers, std::int64_t context, std::int64_t width)
      : layers_(layers), context_(context), width_(width) {}
  void allocate();

  std::int64_t context() const { return context_; }
  std::int64_t width() const { return width_; }
  // Bytes the caches of a batch of `sequences` take (keys and values).
  std::uint64_t batchBytes(std::int64_t sequences) const;
  // `sequences` empty caches of their own beside the single one (which is kept); endBatch frees them.
  void beginBatch(std::int64_t sequences);
  void endBatch();
  std::int64_t batch() const { return batch_; }  // 0 outside a batch

  // The keys / values of `layer`, [context][width]: of the single sequence, or with `batched` of sequence `seq`.
  float* keys(std::int64_t layer, bool batched = false, std::int64_t seq = 0) {
    return slot(k_, kBatch_, layer, batched, seq);
  }
  float* values(std::int64_t layer, bool batched = false, std::int64_t seq = 0) {
    return slot(v_, vBatch_, layer, batched, seq);
  }

 private:
  float* slot(std::vector<float>& single, std::vector<float>& batched, std::int64_t layer, bool inBatch,
              std::int64_t seq) {
    const std::int64_t perLayer = context_ * width_;
    return (inBatch ? batched.data() + seq * layers_ * perLayer : single.data()) + layer * perLayer;
  }

  std::int64_t layers_, context_, width_;
  std::vector<float> k_, v_;
  std::vector<float> kBatch_, vBatch_;  // [sequence][layer][position][width]
  std::int64_t batch_ = 0;
};

}  // namespace eq::model
