#include "pipeline/inspect.h"

#include "format/eqz.h"

namespace eq {

namespace {
void addMemoryEstimates(InspectReport& r, const InspectTensor& t) {
  const std::uint64_t bf16Bytes = isFloatingPoint(t.dtype) ? t.numel * 2 : t.numel * dtypeSize(t.dtype);
  r.parametersTotal += t.numel;
  r.memoryBf16Bytes += bf16Bytes;
  if (t.cls.compressible) {
    r.parametersCompressible += t.numel;
    const std::uint64_t rows = t.shape.back() ? t.numel / static_cast<std::uint64_t>(t.shape.back()) : 0;
    r.memoryFp8Bytes += t.numel + rows * 2;
  } else {
    r.memoryFp8Bytes += bf16Bytes;
  }
}

void addKvCache(InspectReport& r) {
  if (r.config)
    r.kvCacheBytesPerToken = 2ull * static_cast<std::uint64_t>(r.config->numLayers * r.config->numKvHeads *
                                                               r.config->headDim) * 2ull;
}
}  // namespace

InspectReport inspectModel(const ModelSource& source) {
  InspectReport r;
  r.input = source.input().string();
  r.kind = source.kind();
  r.config = source.config();
  r.warnings = source.warnings();
  for (const auto& f : source.files()) {
    r.files.push_back({f.path().filename().string(), f.fileSize(), 0});
    r.weightFileBytes += f.fileSize();
  }
  for (const auto& [name, bytes] : source.otherFiles()) r.otherFileBytes += bytes;

  for (const auto& t : source.tensors()) {
    const TensorInfo& info = *t.info;
    InspectTensor it{info.name, info.shape, info.dtype, t.cls, info.numel, info.bytes(), r.files[t.file].name, {}};
    ++r.files[t.file].tensors;
    addMemoryEstimates(r, it);
    r.tensors.push_back(std::move(it));
  }
  addKvCache(r);
  return r;
}

InspectReport inspectEqz(const EqzFile& file) {
  InspectReport r;
  r.input = file.path().string();
  r.kind = SourceKind::Eqz;
  r.config = eqzModelConfig(file);
  const std::string name = file.path().filename().string();
  r.files.push_back({name, file.fileSize(), file.tensors().size()});
  r.weightFileBytes = file.fileSize();
  for (const auto& t : file.tensors()) {
    InspectTensor it{t.name, t.shape, t.dtype, classifyTensor(t.name, t.shape, t.dtype), t.numel(), t.storedBytes(),
                     name, t.encoding};
    it.cls.compressible = t.encoding != Encoding::Raw;
    addMemoryEstimates(r, it);
    r.tensors.push_back(std::move(it));
  }
  addKvCache(r);
  // informational members of the index: taken only where they have the type a writer gives them
  const auto& idx = file.index();
  auto member = [&](const char* key, bool (nlohmann::json::*is)() const noexcept, nlohmann::json otherwise) {
    return idx.contains(key) && (idx[key].*is)() ? idx[key] : otherwise;
  };
  r.compression = {{"settings", member("settings", &nlohmann::json::is_object, nlohmann::json::object())},
                   {"summary", member("summary", &nlohmann::json::is_object, nlohmann::json::object())},
                   {"tool", member("tool", &nlohmann::json::is_string, "")},
                   {"embedded_files", file.files().size()}};
  return r;
}

nlohmann::ordered_json toJson(const InspectReport& r) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["input"] = r.input;
  j["kind"] = std::string(sourceKindName(r.kind));
  if (r.config) {
    const ModelConfig& c = *r.config;
    j["architecture"] = c.architecture();
    ordered_json cfg{{"model_type", c.modelType},
                     {"hidden_size", c.hiddenSize},
                     {"intermediate_size", c.intermediateSize},
                     {"num_hidden_layers", c.numLayers},
                     {"num_attention_heads", c.numHeads},
                     {"num_key_value_heads", c.numKvHeads},
                     {"head_dim", c.headDim},
                     {"vocab_size", c.vocabSize},
                     {"max_position_embeddings", c.maxPositions},
                     {"norm_eps", c.normEps},
                     {"rope", {{"type", c.rope.type}, {"theta", c.rope.theta}, {"factor", c.rope.factor},
                               {"supported", c.rope.supported()}}},
                     {"tie_word_embeddings", c.tieWordEmbeddings},
                     {"eos_token_ids", c.eosTokenIds},
                     {"sliding_window", c.slidingWindow ? ordered_json(*c.slidingWindow) : ordered_json(nullptr)},
                     {"attention_bias", c.attentionBias},
                     {"qk_norm", c.qkNorm},
                     {"num_experts", c.numExperts},
                     {"dtype", c.dtype}};
    cfg["bos_token_id"] = c.bosTokenId ? ordered_json(*c.bosTokenId) : ordered_json(nullptr);
    j["config"] = cfg;
  } else {
    j["architecture"] = nullptr;
  }
  j["parameters"] = {{"total", r.parametersTotal},
                     {"compressible", r.parametersCompressible},
                     {"kept", r.parametersTotal - r.parametersCompressible}};
  j["size_on_disk_bytes"] = r.sizeOnDisk();
  j["weight_file_bytes"] = r.weightFileBytes;
  j["memory_estimate"] = {{"weights_bf16_bytes", r.memoryBf16Bytes},
                          {"weights_fp8_bytes", r.memoryFp8Bytes},
                          {"kv_cache_bf16_bytes_per_token", r.kvCacheBytesPerToken}};
  ordered_json files = ordered_json::array();
  for (const auto& f : r.files) files.push_back({{"name", f.name}, {"bytes", f.bytes}, {"tensors", f.tensors}});
  j["files"] = files;
  ordered_json tensors = ordered_json::array();
  for (const auto& t : r.tensors) {
    tensors.push_back({{"name", t.name},
                       {"shape", t.shape},
                       {"dtype", std::string(dtypeName(t.dtype))},
                       {"role", std::string(roleName(t.cls.role))},
                       {"layer", t.cls.layer},
                       {"compressible", t.cls.compressible},
                       {"numel", t.numel},
                       {"bytes", t.bytes},
                       {"file", t.file}});
    if (t.encoding) tensors.back()["encoding"] = std::string(encodingName(*t.encoding));
  }
  j["tensors"] = tensors;
  if (!r.compression.is_null()) j["compression"] = r.compression;
  j["warnings"] = r.warnings;
  return j;
}

}  // namespace eq
