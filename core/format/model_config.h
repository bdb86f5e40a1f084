// config.json and generation_config.json of HuggingFace models: the fields the inspector, the compressor and the
// inference engine need, with HF's per-architecture defaults. Unknown fields are ignored (kept in `raw`).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace eq {

struct RopeConfig {
  std::string type = "default";  // default, linear, llama3, yarn (supported); others kept for reporting
  double theta = 10000.0;
  double factor = 1.0;                      // linear, llama3, yarn
  double lowFreqFactor = 1.0;               // llama3
  double highFreqFactor = 4.0;              // llama3
  std::int64_t originalMaxPositions = 0;    // llama3, yarn
  double betaFast = 32.0, betaSlow = 1.0;   // yarn
  std::optional<double> attentionFactor;    // yarn (mscale); HF derives it from factor when absent
  double partialRotaryFactor = 1.0;         // fraction of head_dim that is rotated

  bool supported() const;
};

struct ModelConfig {
  std::string modelType;                    // "llama", "qwen2", ... ("" when unknown)
  std::vector<std::string> architectures;   // "LlamaForCausalLM", ...
  std::int64_t hiddenSize = 0;
  std::int64_t intermediateSize = 0;
  std::int64_t numLayers = 0;
  std::int64_t numHeads = 0;
  std::int64_t numKvHeads = 0;
  std::int64_t headDim = 0;
  std::int64_t vocabSize = 0;
  std::int64_t maxPositions = 0;
  double normEps = 1e-6;
  RopeConfig rope;
  std::optional<RopeConfig> ropeLocal;      // rope of sliding-window layers where it differs (Gemma 3)
  bool tieWordEmbeddings = false;
  std::optional<std::int64_t> bosTokenId;
  std::vector<std::int64_t> eosTokenIds;
  std::optional<std::int64_t> padTokenId;
  std::optional<std::int64_t> slidingWindow;
  std::vector<std::string> layerTypes;      // "full_attention" / "sliding_attention" per layer, when given
  bool attentionBias = false;               // q/k/v (and o) projections have biases
  bool qkNorm = false;                      // per-head RMSNorm on q and k (Qwen3)
  std::string hiddenAct;
  std::string dtype;                        // "bfloat16", ... (torch_dtype / dtype)
  std::int64_t numExperts = 0;              // MoE
  std::int64_t expertsPerToken = 0;
  std::int64_t moeIntermediateSize = 0;
  double finalLogitSoftcap = 0.0;           // Gemma 2 (0 = off)
  double attnLogitSoftcap = 0.0;
  double queryPreAttnScalar = 0.0;
  nlohmann::json raw;                       // the text config as read

  std::string architecture() const { return architectures.empty() ? modelType : architectures.front(); }
};

struct GenerationConfig {
  std::optional<std::int64_t> bosTokenId;
  std::vector<std::int64_t> eosTokenIds;
  std::optional<std::int64_t> padTokenId;
  std::optional<double> temperature, topP, minP, repetitionPenalty;
  std::optional<std::int64_t> topK, maxNewTokens;
  std::optional<bool> doSample;
};

// `label` names the file in error messages. Throws Error(BadConfig / InvalidJson / Unsupported).
ModelConfig parseModelConfig(const nlohmann::json& json, const std::string& label);
GenerationConfig parseGenerationConfig(const nlohmann::json& json, const std::string& label);

// Reads a JSON file; errors name the file (NotFound, Io, InvalidJson with the byte position).
nlohmann::json readJsonFile(const std::filesystem::path& path);

}  // namespace eq
