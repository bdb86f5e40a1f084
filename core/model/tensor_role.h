// What each checkpoint tensor is (attention / MLP linear, fused projections, MoE experts, embeddings, norms...)
// and whether EntQuant compresses it (ENTQUANT.md section 5), from its name, shape and dtype alone.
#pragma once

#include "format/dtype.h"

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace eq {

enum class TensorRole {
  AttentionLinear,  // q/k/v/o projections
  AttentionQkv,     // fused qkv (Phi-3 qkv_proj, GPT-2 c_attn, Falcon query_key_value)
  MlpLinear,        // gate/up/down projections, fc1/fc2, shared experts
  MlpGateUp,        // fused gate_up_proj (Phi-3)
  MoeExpert,        // routed expert weights (2-D per expert, or 3-D stacked)
  MoeRouter,        // expert router / gate logits
  Linear,           // any other 2-D weight inside a transformer block (generic rule)
  Embedding,
  LmHead,
  Norm,
  Bias,
  Other,
};

std::string_view roleName(TensorRole role);
std::optional<TensorRole> parseRole(std::string_view name);  // a roleName

struct TensorClass {
  TensorRole role = TensorRole::Other;
  int layer = -1;  // transformer block index, -1 outside blocks
  bool compressible = false;
};

TensorClass classifyTensor(std::string_view name, const std::vector<std::int64_t>& shape, DType dtype);

// "layers.2" < "layers.10": digit runs compare by value.
bool naturalLess(std::string_view a, std::string_view b);

}  // namespace eq
