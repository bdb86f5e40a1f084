#include "model/tensor_role.h"

#include "model/arch.h"

#include <algorithm>
#include <charconv>
#include <span>

namespace eq {
namespace {

bool isNumber(std::string_view s) {
  return !s.empty() && s.size() < 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool oneOf(std::string_view s, std::span<const std::string_view> set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

bool isNormName(std::string_view module) {
  return contains(module, "norm") || module.starts_with("ln") || contains(module, "layernorm");
}

}  // namespace

std::string_view roleName(TensorRole role) {
  switch (role) {
    case TensorRole::AttentionLinear: return "attention";
    case TensorRole::AttentionQkv: return "attention_qkv";
    case TensorRole::MlpLinear: return "mlp";
    case TensorRole::MlpGateUp: return "mlp_gate_up";
    case TensorRole::MoeExpert: return "moe_expert";
    case TensorRole::MoeRouter: return "moe_router";
    case TensorRole::Linear: return "linear";
    case TensorRole::Embedding: return "embedding";
    case TensorRole::LmHead: return "lm_head";
    case TensorRole::Norm: return "norm";
    case TensorRole::Bias: return "bias";
    case TensorRole::Other: return "other";
  }
  return "other";
}

std::optional<TensorRole> parseRole(std::string_view name) {
  for (int r = 0; r <= static_cast<int>(TensorRole::Other); ++r)
    if (roleName(static_cast<TensorRole>(r)) == name) return static_cast<TensorRole>(r);
  return std::nullopt;
}

TensorClass classifyTensor(std::string_view name, const std::vector<std::int64_t>& shape, DType dtype) {
  const NamingScheme& n = namingScheme();
  const auto parts = tensorNameParts(name);
  const std::string_view last = parts.back();
  const std::string_view module = parts.size() >= 2 ? parts[parts.size() - 2] : std::string_view{};
  const std::size_t ndim = shape.size();

  TensorClass c;
  std::size_t blockAt = parts.size();
  for (std::size_t i = 0; i + 1 < parts.size(); ++i)
    if (oneOf(parts[i], n.blockContainers) && isNumber(parts[i + 1])) {
      std::from_chars(parts[i + 1].data(), parts[i + 1].data() + parts[i + 1].size(), c.layer);
      blockAt = i + 2;
      break;
    }
  const bool inBlock = blockAt < parts.size();
  auto inside = [&](std::span<const std::string_view> set) {
    for (std::size_t i = inBlock ? blockAt : 0; i + 1 < parts.size(); ++i)
      if (oneOf(parts[i], set)) return true;
    return false;
  };
  const bool experts = std::find(parts.begin(), parts.end(), "experts") != parts.end();

  if (last == "bias") {
    c.role = TensorRole::Bias;
  } else if (experts && inBlock && (last == "weight" ? ndim >= 2 : ndim == 3)) {
    c.role = TensorRole::MoeExpert;  // experts.N.w1.weight, or stacked experts.gate_up_proj [E, 2I, H]
  } else if (last != "weight") {
    c.role = TensorRole::Other;      // quantization scales, buffers, ...
  } else if (isNormName(module)) {
    c.role = TensorRole::Norm;
  } else if (!inBlock && (oneOf(module, n.embeddingModules) || contains(module, "embed"))) {
    c.role = (module == "embed_out") ? TensorRole::LmHead : TensorRole::Embedding;
  } else if (!inBlock && (module == "lm_head" || name == "output.weight")) {
    c.role = TensorRole::LmHead;
  } else if (!inBlock) {
    c.role = TensorRole::Other;
  } else if (ndim < 2) {
    c.role = TensorRole::Other;
  } else if (((module == "gate" || module == "router") && inside(n.mlpContainers)) || module == "shared_expert_gate") {
    c.role = TensorRole::MoeRouter;
  } else if (oneOf(module, n.qkvModules)) {
    c.role = TensorRole::AttentionQkv;
  } else if (module == "gate_up_proj") {
    c.role = TensorRole::MlpGateUp;
  } else if (inside(n.attentionContainers) && oneOf(module, n.attentionModules)) {
    c.role = TensorRole::AttentionLinear;
  } else if (inside(n.mlpContainers) || oneOf(module, n.mlpModules)) {
    c.role = TensorRole::MlpLinear;
  } else if (oneOf(module, n.attentionModules)) {
    c.role = TensorRole::AttentionLinear;
  } else {
    c.role = TensorRole::Linear;
  }

  const bool linearRole = c.role == TensorRole::AttentionLinear || c.role == TensorRole::AttentionQkv ||
                          c.role == TensorRole::MlpLinear || c.role == TensorRole::MlpGateUp ||
                          c.role == TensorRole::MoeExpert || c.role == TensorRole::Linear;
  const bool floatInput = dtype == DType::BF16 || dtype == DType::F16 || dtype == DType::F32;
  const bool shapeOk = (ndim == 2 || (ndim == 3 && c.role == TensorRole::MoeExpert)) &&
                       std::all_of(shape.begin(), shape.end(), [](std::int64_t d) { return d > 0; });
  c.compressible = linearRole && floatInput && shapeOk;
  return c;
}

bool naturalLess(std::string_view a, std::string_view b) {
  std::size_t i = 0, j = 0;
  auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      std::size_t ie = i, je = j;
      while (ie < a.size() && digit(a[ie])) ++ie;
      while (je < b.size() && digit(b[je])) ++je;
      auto na = a.substr(i, ie - i), nb = b.substr(j, je - j);
      while (na.size() > 1 && na.front() == '0') na.remove_prefix(1);
      while (nb.size() > 1 && nb.front() == '0') nb.remove_prefix(1);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return (a.size() - i) < (b.size() - j);
}

}  // namespace eq
