#include "format/model_config.h"

#include "common/error.h"
#include "common/json.h"

#include <cmath>
#include <fstream>
#include <sstream>

namespace eq {
namespace {

using nlohmann::json;

// Field readers: absent or null -> nullopt; present with the wrong type -> BadConfig naming the field.
struct Fields {
  const json& j;
  const std::string& label;

  const json* find(const char* key) const {
    const auto it = j.find(key);
    return (it == j.end() || it->is_null()) ? nullptr : &*it;
  }
  std::optional<std::int64_t> integer(const char* key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (v->is_number_integer()) return v->get<std::int64_t>();
    if (v->is_number_float() && std::trunc(v->get<double>()) == v->get<double>() && std::abs(v->get<double>()) < 1e15)
      return static_cast<std::int64_t>(v->get<double>());
    fail(Errc::BadConfig, "{}: field \"{}\" must be an integer", label, key);
  }
  std::optional<double> number(const char* key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) fail(Errc::BadConfig, "{}: field \"{}\" must be a number", label, key);
    return v->get<double>();
  }
  std::optional<bool> boolean(const char* key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) fail(Errc::BadConfig, "{}: field \"{}\" must be true or false", label, key);
    return v->get<bool>();
  }
  std::optional<std::string> string(const char* key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) fail(Errc::BadConfig, "{}: field \"{}\" must be a string", label, key);
    return v->get<std::string>();
  }
  std::int64_t positive(const char* key) const {
    const auto v = integer(key);
    if (!v) fail(Errc::BadConfig, "{}: missing required field \"{}\"", label, key);
    if (*v <= 0) fail(Errc::BadConfig, "{}: field \"{}\" must be positive (got {})", label, key, *v);
    return *v;
  }
  // int, list of ints, or null
  std::vector<std::int64_t> idList(const char* key) const {
    const json* v = find(key);
    if (!v) return {};
    if (v->is_number_integer()) return {v->get<std::int64_t>()};
    std::vector<std::int64_t> out;
    if (v->is_array())
      for (const auto& e : *v) {
        if (!e.is_number_integer()) fail(Errc::BadConfig, "{}: field \"{}\" must hold integers", label, key);
        out.push_back(e.get<std::int64_t>());
      }
    else
      fail(Errc::BadConfig, "{}: field \"{}\" must be an integer or a list of integers", label, key);
    return out;
  }
  template <typename T, typename... Keys>
  std::optional<T> first(std::optional<T> (Fields::*get)(const char*) const, Keys... keys) const {
    for (const char* k : {keys...})
      if (auto v = (this->*get)(k)) return v;
    return std::nullopt;
  }
};

// Reads one rope description: either a rope_parameters object (transformers 5) or an old rope_scaling object.
RopeConfig parseRope(const json& obj, RopeConfig base, const std::string& label, const char* where) {
  if (!obj.is_object()) fail(Errc::BadConfig, "{}: field \"{}\" must be an object", label, where);
  const Fields f{obj, label};
  if (auto t = f.string("rope_type")) base.type = *t;
  else if (auto t2 = f.string("type")) base.type = *t2;
  if (base.type == "su") base.type = "longrope";  // old Phi-3 spelling
  if (auto v = f.number("rope_theta")) base.theta = *v;
  if (auto v = f.number("factor")) base.factor = *v;
  if (auto v = f.number("low_freq_factor")) base.lowFreqFactor = *v;
  if (auto v = f.number("high_freq_factor")) base.highFreqFactor = *v;
  if (auto v = f.integer("original_max_position_embeddings")) base.originalMaxPositions = *v;
  if (auto v = f.number("beta_fast")) base.betaFast = *v;
  if (auto v = f.number("beta_slow")) base.betaSlow = *v;
  if (auto v = f.number("attention_factor")) base.attentionFactor = *v;
  if (auto v = f.number("partial_rotary_factor")) base.partialRotaryFactor = *v;

  const bool scaled = base.type == "linear" || base.type == "llama3" || base.type == "yarn";
  if (scaled && !obj.contains("factor"))
    fail(Errc::BadConfig, "{}: rope type \"{}\" needs \"factor\" in \"{}\"", label, base.type, where);
  if (scaled && base.factor <= 0)
    fail(Errc::BadConfig, "{}: rope \"factor\" must be positive (got {})", label, base.factor);
  if (base.type == "llama3")
    for (const char* k : {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
      if (!obj.contains(k)) fail(Errc::BadConfig, "{}: rope type \"llama3\" needs \"{}\" in \"{}\"", label, k, where);
  if (base.theta <= 0) fail(Errc::BadConfig, "{}: rope_theta must be positive (got {})", label, base.theta);
  return base;
}

bool isRopeObject(const json& j) { return j.is_object() && (j.contains("rope_type") || j.contains("rope_theta") || j.contains("type")); }

void parseRopeFields(const Fields& f, ModelConfig& c) {
  RopeConfig base;
  if (auto v = f.number("rope_theta")) base.theta = *v;
  if (auto v = f.number("partial_rotary_factor")) base.partialRotaryFactor = *v;
  if (const json* p = f.find("rope_parameters")) {
    if (isRopeObject(*p)) {
      c.rope = parseRope(*p, base, f.label, "rope_parameters");
    } else if (p->is_object()) {  // per layer type: {"full_attention": {...}, "sliding_attention": {...}}
      for (const auto& [kind, sub] : p->items()) {
        if (kind == "full_attention") c.rope = parseRope(sub, base, f.label, "rope_parameters.full_attention");
        else if (kind == "sliding_attention")
          c.ropeLocal = parseRope(sub, base, f.label, "rope_parameters.sliding_attention");
      }
    } else {
      fail(Errc::BadConfig, "{}: field \"rope_parameters\" must be an object", f.label);
    }
    return;
  }
  c.rope = base;
  if (const json* s = f.find("rope_scaling")) c.rope = parseRope(*s, base, f.label, "rope_scaling");
  if (auto local = f.number("rope_local_base_freq")) {  // Gemma 3, before rope_parameters
    RopeConfig l = base;
    l.theta = *local;
    c.ropeLocal = l;
  }
}

bool startsWith(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

bool RopeConfig::supported() const {
  return type == "default" || type == "linear" || type == "llama3" || type == "yarn";
}

ModelConfig parseModelConfig(const json& top, const std::string& label) {
  if (!top.is_object()) fail(Errc::InvalidJson, "{}: not a JSON object", label);
  ModelConfig c;
  if (const auto it = top.find("architectures"); it != top.end() && it->is_array())
    for (const auto& a : *it)
      if (a.is_string()) c.architectures.push_back(a.get<std::string>());
  // Multimodal wrappers keep the language model's fields in text_config.
  const json* text = &top;
  if (!top.contains("hidden_size"))
    if (const auto it = top.find("text_config"); it != top.end() && it->is_object()) text = &*it;
  const Fields f{*text, label};
  const Fields ftop{top, label};
  c.raw = *text;
  c.modelType = ftop.string("model_type").value_or(f.string("model_type").value_or(""));

  c.hiddenSize = f.positive("hidden_size");
  c.numLayers = f.positive("num_hidden_layers");
  c.numHeads = f.positive("num_attention_heads");
  c.vocabSize = f.positive("vocab_size");
  c.intermediateSize = f.integer("intermediate_size").value_or(0);
  c.numKvHeads = f.integer("num_key_value_heads").value_or(c.numHeads);
  if (c.numKvHeads <= 0 || c.numHeads % c.numKvHeads != 0)
    fail(Errc::BadConfig, "{}: num_attention_heads ({}) is not a multiple of num_key_value_heads ({})", label,
         c.numHeads, c.numKvHeads);
  if (auto hd = f.integer("head_dim")) {
    if (*hd <= 0) fail(Errc::BadConfig, "{}: field \"head_dim\" must be positive (got {})", label, *hd);
    c.headDim = *hd;
  } else {
    if (c.hiddenSize % c.numHeads != 0)
      fail(Errc::BadConfig, "{}: hidden_size ({}) is not a multiple of num_attention_heads ({}) and head_dim is "
           "not given", label, c.hiddenSize, c.numHeads);
    c.headDim = c.hiddenSize / c.numHeads;
  }
  c.maxPositions = f.integer("max_position_embeddings").value_or(0);
  const bool phi = startsWith(c.modelType, "phi");
  c.normEps = f.first<double>(&Fields::number, "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "norm_eps")
                  .value_or(phi ? 1e-5 : 1e-6);
  parseRopeFields(f, c);

  const bool gemma = startsWith(c.modelType, "gemma");
  const auto tie = ftop.boolean("tie_word_embeddings");
  c.tieWordEmbeddings = tie ? *tie : f.boolean("tie_word_embeddings").value_or(gemma);
  c.bosTokenId = ftop.integer("bos_token_id");
  if (!c.bosTokenId) c.bosTokenId = f.integer("bos_token_id");
  c.eosTokenIds = ftop.idList("eos_token_id");
  if (c.eosTokenIds.empty()) c.eosTokenIds = f.idList("eos_token_id");
  c.padTokenId = f.integer("pad_token_id");

  c.slidingWindow = f.integer("sliding_window");
  if (f.boolean("use_sliding_window") == false) c.slidingWindow.reset();  // Qwen2 keeps the field but turns it off
  if (const json* lt = f.find("layer_types"); lt && lt->is_array())
    for (const auto& t : *lt)
      if (t.is_string()) c.layerTypes.push_back(t.get<std::string>());
  if (!c.layerTypes.empty() && static_cast<std::int64_t>(c.layerTypes.size()) != c.numLayers)
    fail(Errc::BadConfig, "{}: layer_types has {} entries for {} layers", label, c.layerTypes.size(), c.numLayers);

  const bool qwen2 = c.modelType == "qwen2" || c.modelType == "qwen2_moe";
  c.attentionBias = f.boolean("attention_bias").value_or(qwen2) || qwen2;
  c.qkNorm = startsWith(c.modelType, "qwen3") || c.modelType == "gemma3" || c.modelType == "gemma3_text" ||
             c.modelType == "olmo2";
  c.hiddenAct = f.first<std::string>(&Fields::string, "hidden_act", "hidden_activation").value_or("silu");
  c.dtype = f.first<std::string>(&Fields::string, "dtype", "torch_dtype").value_or("");
  c.numExperts = f.first<std::int64_t>(&Fields::integer, "num_local_experts", "num_experts", "n_routed_experts").value_or(0);
  c.expertsPerToken = f.integer("num_experts_per_tok").value_or(0);
  c.moeIntermediateSize = f.integer("moe_intermediate_size").value_or(0);
  c.finalLogitSoftcap = f.number("final_logit_softcapping").value_or(0.0);
  c.attnLogitSoftcap = f.number("attn_logit_softcapping").value_or(0.0);
  c.queryPreAttnScalar = f.number("query_pre_attn_scalar").value_or(0.0);
  return c;
}

GenerationConfig parseGenerationConfig(const json& j, const std::string& label) {
  if (!j.is_object()) fail(Errc::InvalidJson, "{}: not a JSON object", label);
  const Fields f{j, label};
  GenerationConfig g;
  g.bosTokenId = f.integer("bos_token_id");
  g.eosTokenIds = f.idList("eos_token_id");
  g.padTokenId = f.integer("pad_token_id");
  g.temperature = f.number("temperature");
  g.topP = f.number("top_p");
  g.minP = f.number("min_p");
  g.repetitionPenalty = f.number("repetition_penalty");
  g.topK = f.integer("top_k");
  g.maxNewTokens = f.integer("max_new_tokens");
  g.doSample = f.boolean("do_sample");
  return g;
}

json readJsonFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) fail(Errc::NotFound, "{}: no such file", path.string());
    fail(Errc::Io, "{}: cannot be read", path.string());
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  return parseJson(text, path.string() + ":");
}

}  // namespace eq
