// A decoder-only language model on the CPU: feed token ids (a whole prompt in one batched prefill, or one at a
// time), get next-token logits. The KV cache holds up to `contextLength` positions. The families the engine runs
// are listed in the architecture table (model/arch.h): Llama 2/3, Mistral, Qwen2/2.5, Qwen3, Phi-3, Mixtral, Gemma
// and Gemma 2, all in llama_family.cpp (one class with per-family switches).
#pragma once

#include "common/progress.h"
#include "model/weight_source.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace eq::model {

// What a statistics pass over one block (CausalLM::runLayer with stopAfterStage) leaves for the next pass over
// the same block and text to go on from, instead of running the block again from its input: the values after the
// inputs of `stage` were observed (stage 1: the attention output; 2: the residual after attention and the MLP's
// input; 3: that residual and the MLP's inner activation). stage -1: nothing kept. Only valid while the weights of
// the stages before `stage` stay as they were (the caller's to ensure: calibration clears it when one is replaced).
struct BlockProgress {
  int stage = -1;
  std::vector<float> a, b;
  std::uint64_t bytes() const { return 4 * (a.size() + b.size()); }
};

struct LoadOptions {
  std::int64_t contextLength = 4096;  // KV cache positions (clamped to max_position_embeddings)
  // Asked before each block is loaded; false: Error(Cancelled) "loading cancelled".
  KeepGoingFn keepGoing;
  // Phase::Load after each block, in blocks (an .eqz file's blocks are rANS-decoded here).
  ProgressFn progress;
};

// Sees the input of the compressible linear layers on every forward pass, before the product (calibration,
// pipeline/calibrate.h): the checkpoint names of the weights that take this input (q, k and v share theirs; a
// fused weight's slices repeat its name) and the input X [n][cols]. Called on the thread that runs forward().
using InputObserver = std::function<void(std::span<const std::string* const> weights, const float* x, std::int64_t n,
                                         std::int64_t cols)>;

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  // Appends `ids` after what the cache holds and returns the logits of every new position ([ids.size()][vocab]),
  // or with LogitRows::Last only the last one's ([vocab]: what generation samples from; the output layer then runs
  // for one position instead of all, about 6 % of a 1B model's prefill). keepGoing is asked between layers; false
  // throws Error(Cancelled) and leaves the cache as before the call.
  enum class LogitRows { All, Last };
  virtual std::vector<float> forward(std::span<const std::int32_t> ids, const std::function<bool()>& keepGoing = {},
                                     LogitRows rows = LogitRows::All) = 0;
  virtual void reset() = 0;
  // Several independent sequences in lockstep (calibration writes its texts this way): beginBatch(n) gives n empty
  // caches of their own (n x layers x context x 2 x kv width floats; `forward`'s cache is kept) and sets the
  // position to 0; each forwardBatch(ids) appends ids[b] to sequence b, all at the same position, and returns
  // the logits [n][vocab]. The weights are read once per step for all sequences (the matrix kernels' multi-token
  // path), so writing n texts this way is much faster than one after another. Call reset() before using forward()
  // again. Error(InvalidArgument) for a batch of another size than begun or a full context.
  virtual void beginBatch(std::int64_t sequences) = 0;
  virtual std::vector<float> forwardBatch(std::span<const std::int32_t> ids) = 0;
  virtual std::uint64_t batchCacheBytes(std::int64_t sequences) const = 0;
  // Keeps the first n positions of the cache and forgets the rest (n <= position()); a chat reuses the cached
  // prefix its next prompt shares with the last one.
  virtual void truncate(std::int64_t n) = 0;
  virtual std::int64_t position() const = 0;  // tokens in the cache
  virtual std::int64_t vocabSize() const = 0;
  virtual std::int64_t contextLength() const = 0;
  virtual std::uint64_t weightBytes() const = 0;  // in RAM
  // Observes the linear layers' inputs from now on (empty: stop).
  virtual void setInputObserver(InputObserver observer) = 0;

  // Block by block (calibration, pipeline/calibrate.h; sensitivity, pipeline/sensitivity.h). The hidden states block
  // 0 receives for `ids` ([n][hidden]); block `layer` applied in place to the hidden states x [n][hidden] of one text at positions 0..n-1 (the observer
  // sees its inputs; the cache is left empty, as by reset()); and a compressible weight swapped for another of its
  // shape, such as its compressed version (a fused weight's slices are cut again; the bias stays). Errors:
  // Error(InvalidArgument) for a layer out of range or n beyond the context, Error(MissingTensor) for a name no
  // linear layer of the engine has, Error(ShapeMismatch) for a weight of another shape.
  virtual std::int64_t numLayers() const = 0;
  virtual std::int64_t hiddenSize() const = 0;
  virtual std::vector<float> embed(std::span<const std::int32_t> ids) const = 0;
  // stopAfterStage >= 0 (a statistics pass, calibrationStage's numbering: 0 q/k/v, 1 o, 2 gate/up, 3 down): the
  // block stops as soon as the inputs of that stage's weights have been observed, and x is left half-way (a
  // mixture-of-experts MLP always runs whole).
  // With `progress`: a pass that stops at stage 1 to 3 keeps what it computed there (BlockProgress), and a pass
  // given a progress of an earlier stage than it stops at (or a whole pass) goes on from there, observing only the
  // stages after it; x must still hold the block's input. Otherwise it runs from the input and the progress is
  // cleared. The results are the same, bit for bit, as running from the input. Mixture-of-experts blocks keep none.
  virtual void runLayer(std::int64_t layer, float* x, std::int64_t n, int stopAfterStage = -1,
                        BlockProgress* progress = nullptr) = 0;
  // The logits ([n][vocab]) of the hidden states x [n][hidden] leaving the last block: the final norm and the
  // output layer (softcapped where the model does), as forward() ends.
  virtual std::vector<float> head(const float* x, std::int64_t n) const = 0;
  virtual void replaceWeight(const std::string& name, const Linear& weight) = 0;
};

// Builds the model for the weights' architecture; throws Error(Unsupported) naming it when there is no
// implementation ("unsupported architecture Gemma2ForCausalLM").
std::unique_ptr<CausalLM> loadCausalLM(const WeightSource& weights, ThreadPool& pool, const LoadOptions& options = {});

}  // namespace eq::model
