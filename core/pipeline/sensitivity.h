// `--allocation measured`: how much each weight's quantization error costs the model, measured on the model's own
// text instead of guessed from its position (depthSensitivity). The original model runs a few texts it wrote itself
// (pipeline/calibrate.h) once, keeping the hidden states that enter every block and its next-token distributions;
// then for each weight a probe version (the weight quantized alone) is put in, the texts run from that weight's
// block on, and the mean KL divergence of the next-token distributions from the original's is what that weight's
// error costs. To first order the KL grows in proportion to the squared error, so KL / relative MSE of the probe
// is the weight's sensitivity: the factor on its relative MSE in the bit allocation (compress.h).
#pragma once

#include "model/model_source.h"
#include "model/causal_lm.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace eq {
class ThreadPool;

namespace model {
class WeightSource;
}

class SensitivityProbe {
 public:
  // Runs the original model over `texts` once (each at most the model's context). Memory: 4 bytes x tokens x
  // (hidden x blocks + vocab), refused with Error(InvalidArgument) beyond maxBytes (0: a quarter of the RAM).
  // Errors: Error(BadConfig), Error(Unsupported) for an architecture the engine lacks, Error(Cancelled).
  SensitivityProbe(const ModelSource& source, ThreadPool& pool, std::vector<std::vector<std::int32_t>> texts,
                   std::function<bool()> keepGoing = {}, std::uint64_t maxBytes = 0);
  ~SensitivityProbe();
  SensitivityProbe(const SensitivityProbe&) = delete;
  SensitivityProbe& operator=(const SensitivityProbe&) = delete;

  // Mean KL(original || model with `weight` replaced by `probe`) over every predicted position of the texts, in
  // nats per token; the original weight is put back afterwards. Errors: Error(InvalidArgument) for a weight
  // outside the blocks, Error(MissingTensor) for one the engine does not run, Error(ShapeMismatch),
  // Error(Cancelled).
  double kl(const std::string& weight, const model::Linear& probe);

  std::uint64_t tokens() const;
  double seconds() const { return seconds_; }  // the original run and every kl() so far

 private:
  const ModelSource& source_;
  ThreadPool& pool_;
  std::function<bool()> keepGoing_;
  std::unique_ptr<model::WeightSource> weights_;
  std::unique_ptr<model::CausalLM> lm_;
  std::vector<std::vector<std::int32_t>> texts_;
  std::vector<std::vector<std::vector<float>>> hidden_;  // [block][text]: the hidden states entering the block
  std::vector<std::vector<float>> logProbs_;             // [text]: the original's log-softmax, [n][vocab]
  double seconds_ = 0;
};

}  // namespace eq
