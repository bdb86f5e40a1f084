#include "model/arch.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <array>
#include <vector>

namespace eq {
namespace {

constexpr std::array<std::string_view, 5> kBlockContainers{"layers", "h", "blocks", "block", "layer"};
constexpr std::array<std::string_view, 7> kAttentionContainers{"self_attn", "attn", "attention", "self_attention",
                                                               "cross_attn", "mixer", "attn_layer"};
constexpr std::array<std::string_view, 5> kMlpContainers{"mlp", "feed_forward", "ffn", "block_sparse_moe", "moe"};
constexpr std::array<std::string_view, 5> kQkvModules{"qkv_proj", "query_key_value", "c_attn", "Wqkv", "qkv"};
constexpr std::array<std::string_view, 14> kAttentionModules{"q_proj", "k_proj", "v_proj", "o_proj", "out_proj",
                                                             "query", "key", "value", "dense", "c_proj",
                                                             "wq", "wk", "wv", "wo"};
constexpr std::array<std::string_view, 12> kMlpModules{"gate_proj", "up_proj", "down_proj", "fc1", "fc2", "w1", "w2",
                                                       "w3", "c_fc", "dense_h_to_4h", "dense_4h_to_h", "c_proj"};
constexpr std::array<std::string_view, 8> kEmbeddingModules{"embed_tokens", "wte", "wpe", "word_embeddings",
                                                            "embed_in", "tok_embeddings", "embed_positions",
                                                            "position_embeddings"};

// What each linear module computes, in an attention or an MLP (c_proj is o in GPT-2's attention, down in its MLP;
// dense is o in an attention and has no fixed meaning in an MLP), and whether its error is doubled by the depth
// rule (arch.h, depthSensitivity).
struct LinearModule {
  std::string_view name;
  BlockWeight inAttention, inMlp;
  bool doubled = false;
};
constexpr BlockWeight X = BlockWeight::Other;
constexpr std::array<LinearModule, 31> kLinearModules{{
    {"q_proj", BlockWeight::Q, X},        {"k_proj", BlockWeight::K, X},
    {"v_proj", BlockWeight::V, X, true},  {"o_proj", BlockWeight::O, X},
    {"out_proj", BlockWeight::O, X},      {"query", BlockWeight::Q, X},
    {"key", BlockWeight::K, X},           {"value", BlockWeight::V, X},
    {"dense", BlockWeight::O, X},         {"wq", BlockWeight::Q, X},
    {"wk", BlockWeight::K, X},            {"wv", BlockWeight::V, X},
    {"wo", BlockWeight::O, X},            {"qkv_proj", BlockWeight::Qkv, BlockWeight::Qkv, true},
    {"query_key_value", BlockWeight::Qkv, BlockWeight::Qkv}, {"c_attn", BlockWeight::Qkv, BlockWeight::Qkv},
    {"Wqkv", BlockWeight::Qkv, BlockWeight::Qkv},            {"qkv", BlockWeight::Qkv, BlockWeight::Qkv},
    {"c_proj", BlockWeight::O, BlockWeight::Down},
    {"gate_proj", X, BlockWeight::Gate},  {"up_proj", X, BlockWeight::Up},
    {"down_proj", X, BlockWeight::Down, true},
    {"gate_up_proj", BlockWeight::GateUp, BlockWeight::GateUp},
    {"fc1", X, BlockWeight::Up},          {"fc2", X, BlockWeight::Down},
    {"w1", X, BlockWeight::Gate},         {"w2", X, BlockWeight::Down, true},
    {"w3", X, BlockWeight::Up},           {"c_fc", X, BlockWeight::Up},
    {"dense_h_to_4h", X, BlockWeight::Up}, {"dense_4h_to_h", X, BlockWeight::Down},
}};

constexpr std::array<FamilyInfo, 8> kFamilies{{
    {Family::Llama, "llama", "Llama"},
    {Family::Mistral, "mistral", "Mistral"},
    {Family::Qwen2, "qwen2", "Qwen2"},
    {Family::Qwen3, "qwen3", "Qwen3"},
    {Family::Phi3, "phi3", "Phi-3"},
    {Family::Mixtral, "mixtral", "Mixtral"},
    {Family::Gemma, "gemma", "Gemma", true},
    {Family::Gemma2, "gemma2", "Gemma 2", true},
}};

template <std::size_t N>
bool oneOf(std::string_view s, const std::array<std::string_view, N>& set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

// The parts of a weight's name: its own module (the part before "weight" / "bias") and whether it lies inside
// an attention or an MLP container.
struct ModulePlace {
  std::string_view module;
  bool inAttention = false, inMlp = false;
};

ModulePlace placeOf(std::string_view tensorName) {
  const auto parts = tensorNameParts(tensorName);
  ModulePlace p;
  if (parts.size() < 2) return p;
  p.module = parts[parts.size() - 2];
  for (std::size_t i = 0; i + 2 < parts.size(); ++i) {
    p.inAttention |= oneOf(parts[i], kAttentionContainers);
    p.inMlp |= oneOf(parts[i], kMlpContainers);
  }
  return p;
}

const LinearModule* linearModule(std::string_view name) {
  for (const auto& m : kLinearModules)
    if (m.name == name) return &m;
  return nullptr;
}

}  // namespace

std::vector<std::string_view> tensorNameParts(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const auto dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

const NamingScheme& namingScheme() {
  static const NamingScheme s{kBlockContainers, kAttentionContainers, kMlpContainers, kQkvModules,
                              kAttentionModules, kMlpModules, kEmbeddingModules};
  return s;
}

std::string_view blockWeightName(BlockWeight w) {
  switch (w) {
    case BlockWeight::Q: return "q";
    case BlockWeight::K: return "k";
    case BlockWeight::V: return "v";
    case BlockWeight::O: return "o";
    case BlockWeight::Qkv: return "qkv";
    case BlockWeight::Gate: return "gate";
    case BlockWeight::Up: return "up";
    case BlockWeight::Down: return "down";
    case BlockWeight::GateUp: return "gate_up";
    case BlockWeight::Router: return "router";
    case BlockWeight::Other: return "other";
  }
  return "other";
}

BlockWeight blockWeightOf(std::string_view tensorName) {
  const ModulePlace p = placeOf(tensorName);
  if (((p.module == "gate" || p.module == "router") && p.inMlp) || p.module == "shared_expert_gate")
    return BlockWeight::Router;
  const LinearModule* m = linearModule(p.module);
  if (!m) return BlockWeight::Other;
  if (p.inAttention) return m->inAttention;
  if (p.inMlp) return m->inMlp;
  return m->inAttention != BlockWeight::Other ? m->inAttention : m->inMlp;
}

int calibrationStage(std::string_view tensorName) {
  switch (blockWeightOf(tensorName)) {
    case BlockWeight::Q:
    case BlockWeight::K:
    case BlockWeight::V:
    case BlockWeight::Qkv: return 0;
    case BlockWeight::O: return 1;
    case BlockWeight::Gate:
    case BlockWeight::Up:
    case BlockWeight::GateUp:
    case BlockWeight::Router: return 2;
    case BlockWeight::Down: return 3;
    case BlockWeight::Other: break;
  }
  return placeOf(tensorName).inMlp ? 2 : 0;
}

double depthSensitivity(std::string_view tensorName, int layer, int layers) {
  double depth = 1;
  if (layer >= 0 && layers > 0) depth += std::exp2(-layer) + std::exp2(-(layers - 1 - layer));
  const LinearModule* m = linearModule(placeOf(tensorName).module);
  return depth * (m && m->doubled ? 2.0 : 1.0);
}

std::span<const FamilyInfo> families() { return kFamilies; }

const FamilyInfo* familyOf(std::string_view modelType) {
  for (const auto& f : kFamilies)
    if (f.modelType == modelType) return &f;
  return nullptr;
}

std::string supportedFamilies() {
  std::string s;
  for (const auto& f : kFamilies) s += (s.empty() ? "" : ", ") + std::string(f.displayName);
  return s;
}

std::string blockTensorName(std::int64_t layer, std::string_view within) {
  return fmt::format("{}{}.{}", names::kBlockPrefix, layer, within);
}

std::int64_t blockOfWeight(std::string_view name) {
  if (!name.starts_with(names::kBlockPrefix)) return -1;
  std::int64_t l = 0;
  std::size_t i = names::kBlockPrefix.size();
  if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) l = l * 10 + (name[i] - '0');
  return i < name.size() && name[i] == '.' ? l : -1;
}

}  // namespace eq
