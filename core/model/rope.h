// Rotary position embeddings as HF transformers computes them: inverse frequencies for the rope types default,
// linear, llama3 and yarn (with yarn's attention factor), applied in the rotate-half layout.
#pragma once

#include "format/model_config.h"

#include <vector>

namespace eq::model {

class Rope {
 public:
  // Throws Error(Unsupported) for rope types other than default, linear, llama3, yarn.
  Rope(const RopeConfig& rope, std::int64_t headDim, std::int64_t maxPositions, const std::string& label);
  // Rotates one head vector (headDim floats) in place for position `pos`.
  void apply(float* head, std::int64_t pos) const;

 private:
  std::int64_t headDim_, rotary_;
  std::vector<double> invFreq_;
  double attentionFactor_ = 1.0;
};

}  // namespace eq::model
