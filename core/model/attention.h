// Attention over a KV cache on the CPU: causal (optionally sliding-window, optionally soft-capped) softmax
// attention of query heads over grouped KV heads, each (token, head) pair a task on the thread pool. The sums run
// in a fixed order (eight-lane accumulators, one fused multiply-add per term), so the result does not depend on
// the thread count or on which thread runs a task.
#pragma once

#include <cstdint>
#include <optional>

namespace eq {
class ThreadPool;
}

namespace eq::model {

struct AttentionShape {
  std::int64_t heads = 0, kvHeads = 0, headDim = 0;  // heads must be a multiple of kvHeads
  float scale = 1.0f;                                // on q . k
  float softcap = 0.0f;                              // > 0: scores become tanh(s / cap) * cap (Gemma 2)
  std::optional<std::int64_t> window;                // sliding window: the last `window` positions only
};

// Token i of n: its queries q[i][heads x headDim] (RoPE applied) at position positions[i] attend to keys[i] and
// values[i] ([context][kvHeads x headDim], positions 0..positions[i] filled); out[i][heads x headDim].
void causalAttention(const AttentionShape& shape, const float* q, std::int64_t n, const std::int64_t* positions,
                     const float* const* keys, const float* const* values, float* out, ThreadPool& pool);

}  // namespace eq::model
