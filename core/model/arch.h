// The architecture table: what the project knows about how transformer checkpoints are laid out, in one place.
// The module names that tell a tensor's role (read by tensor_role.h for any model, run or not), the weights of a
// block of the families the engine runs with their checkpoint names (read by the engine), the order in which
// error feedback sees a block's weights (calibration), the data-free depth rule of the bit allocation
// (compression), and the families themselves with their switches. Adding a family or a naming scheme is a change
// here, not in four places.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eq {

// ---- Naming schemes (any checkpoint) --------------------------------------------------------------------------------

// The module names classifyTensor reads a tensor's role from (HF naming and the older GPT-2 / GPT-NeoX / Falcon /
// Meta spellings). A tensor name is split at dots; the containers are the parts above the weight's own module.
struct NamingScheme {
  std::span<const std::string_view> blockContainers;      // "layers" in "model.layers.3.": a block index follows
  std::span<const std::string_view> attentionContainers;  // "self_attn", "attn", ...
  std::span<const std::string_view> mlpContainers;        // "mlp", "feed_forward", "block_sparse_moe", ...
  std::span<const std::string_view> qkvModules;           // fused q/k/v: "qkv_proj", "query_key_value", ...
  std::span<const std::string_view> attentionModules;     // "q_proj", ..., "o_proj", "wq", "dense", ...
  std::span<const std::string_view> mlpModules;           // "gate_proj", "up_proj", "down_proj", "w1", "fc1", ...
  std::span<const std::string_view> embeddingModules;     // "embed_tokens", "wte", ...
};
const NamingScheme& namingScheme();
// A tensor name split at its dots: "model.layers.3.mlp.up_proj.weight" -> model, layers, 3, mlp, up_proj, weight.
std::vector<std::string_view> tensorNameParts(std::string_view tensorName);

// ---- Block weights --------------------------------------------------------------------------------------------------

// What a linear weight of a transformer block computes. MoE experts' w1 / w3 / w2 are Gate / Up / Down (of an
// expert), the router is Router.
enum class BlockWeight : std::uint8_t { Q, K, V, O, Qkv, Gate, Up, Down, GateUp, Router, Other };
std::string_view blockWeightName(BlockWeight w);  // "q", "k", "v", "o", "qkv", "gate", "up", "down", ...

// The block weight a tensor name holds, from its own module name and its containers ("...self_attn.v_proj.weight"
// -> V; "...block_sparse_moe.experts.3.w2.weight" -> Down); Other for anything else.
BlockWeight blockWeightOf(std::string_view tensorName);

// The order in which error feedback (pipeline/calibrate.h) sees a block's weights, as their inputs are computed:
// 0 q/k/v (the block's input), 1 o, 2 gate/up (the MLP's input: also an MoE router and experts' w1 / w3, and any
// other weight inside the MLP), 3 down (w2). Compressing a block's weights in this order lets each see the
// compressed versions of the ones that feed it.
int calibrationStage(std::string_view tensorName);

// The data-free sensitivity of `--allocation depth` for a compressible tensor of block `layer` (of `layers`;
// -1 outside the blocks): (1 + 2^-layer + 2^-(layers - 1 - layer)) x (2 for a weight whose error reaches the
// residual stream unmixed by a nonlinearity or a softmax, else 1). So the first and last blocks count about twice
// the middle ones and their neighbours 1.5x. The doubled weights are v_proj, down_proj and w2 (an MoE expert's or
// Meta's feed_forward.w2); Phi-3's fused qkv_proj counts as v too (it holds v's rows; the quality study measured it
// so). Other spellings of the same weights (wv, value, fc2, c_proj, dense_4h_to_h) are not doubled: no model
// studied used them.
double depthSensitivity(std::string_view tensorName, int layer, int layers);

// ---- Families the engine runs ---------------------------------------------------------------------------------------

enum class Family : std::uint8_t { Llama, Mistral, Qwen2, Qwen3, Phi3, Mixtral, Gemma, Gemma2 };

struct FamilyInfo {
  Family family;
  std::string_view modelType;    // config.json "model_type"
  std::string_view displayName;  // "Llama", "Gemma 2"
  bool gemmaNorms = false;       // RMSNorm scales by (1 + w); embeddings scaled by sqrt(hidden)
};
std::span<const FamilyInfo> families();
const FamilyInfo* familyOf(std::string_view modelType);  // null: the engine does not run it
std::string supportedFamilies();                           // "Llama, Mistral, Qwen2, Qwen3, Phi-3, Mixtral, ..."

// Checkpoint names of the engine's families (HF transformers' layout, shared by all eight). The engine reads a
// block's weights by these; which of the optional ones a checkpoint has (fused q/k/v and gate/up, MoE, Gemma 2's
// sandwich norms, q/k norms) decides how the block runs.
namespace names {
inline constexpr std::string_view kEmbedTokens = "model.embed_tokens.weight";
inline constexpr std::string_view kFinalNorm = "model.norm.weight";
inline constexpr std::string_view kLmHead = "lm_head.weight";
inline constexpr std::string_view kBlockPrefix = "model.layers.";  // + block index + "."
// Inside a block (after kBlockPrefix + index + "."); linear modules without ".weight" / ".bias".
inline constexpr std::string_view kInputNorm = "input_layernorm.weight";
inline constexpr std::string_view kPostAttentionNorm = "post_attention_layernorm.weight";
inline constexpr std::string_view kPreFeedforwardNorm = "pre_feedforward_layernorm.weight";    // Gemma 2
inline constexpr std::string_view kPostFeedforwardNorm = "post_feedforward_layernorm.weight";  // Gemma 2
inline constexpr std::string_view kQNorm = "self_attn.q_norm.weight";                          // Qwen3
inline constexpr std::string_view kKNorm = "self_attn.k_norm.weight";
inline constexpr std::string_view kQ = "self_attn.q_proj", kK = "self_attn.k_proj", kV = "self_attn.v_proj",
                                  kO = "self_attn.o_proj";
inline constexpr std::string_view kQkv = "self_attn.qkv_proj";  // Phi-3: q rows, then k, then v
inline constexpr std::string_view kGate = "mlp.gate_proj", kUp = "mlp.up_proj", kDown = "mlp.down_proj";
inline constexpr std::string_view kGateUp = "mlp.gate_up_proj";  // Phi-3: gate rows, then up
inline constexpr std::string_view kRouter = "block_sparse_moe.gate";  // Mixtral
// An expert's weights: kExpertPrefix + index + "." + kExpertGate (w1) / kExpertUp (w3) / kExpertDown (w2).
inline constexpr std::string_view kExpertPrefix = "block_sparse_moe.experts.";
inline constexpr std::string_view kExpertGate = "w1", kExpertUp = "w3", kExpertDown = "w2";
}  // namespace names

// "model.layers.<layer>." + within
std::string blockTensorName(std::int64_t layer, std::string_view within);
// The block of a tensor in the engine's layout: "model.layers.12.mlp.up_proj.weight" -> 12; -1 outside the blocks.
std::int64_t blockOfWeight(std::string_view tensorName);

}  // namespace eq
