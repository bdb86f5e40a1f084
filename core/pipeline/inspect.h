// `entquant inspect`: what a model holds, how big it is and what it needs in memory, from headers alone.
#pragma once

#include "format/eqz.h"
#include "model/model_source.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace eq {

struct InspectTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  DType dtype;
  TensorClass cls;
  std::uint64_t numel = 0;
  std::uint64_t bytes = 0;  // as stored
  std::string file;
  std::optional<Encoding> encoding;  // .eqz only
};

struct InspectFile {
  std::string name;
  std::uint64_t bytes = 0;
  std::size_t tensors = 0;
};

struct InspectReport {
  std::string input;
  SourceKind kind = SourceKind::Folder;
  std::optional<ModelConfig> config;
  std::uint64_t parametersTotal = 0;
  std::uint64_t parametersCompressible = 0;
  std::uint64_t weightFileBytes = 0;   // the safetensors files
  std::uint64_t otherFileBytes = 0;    // config, tokenizer, ...
  // Memory to hold the weights: all in bf16; compressible ones as FP8 codes + one bf16 scale per row, the rest
  // in bf16. KV cache in bf16 per token of context (from config.json; 0 when unknown).
  std::uint64_t memoryBf16Bytes = 0;
  std::uint64_t memoryFp8Bytes = 0;
  std::uint64_t kvCacheBytesPerToken = 0;
  std::vector<InspectFile> files;
  std::vector<InspectTensor> tensors;
  std::vector<std::string> warnings;
  nlohmann::json compression;  // .eqz only: settings and summary from its index

  std::uint64_t sizeOnDisk() const { return weightFileBytes + otherFileBytes; }
};

InspectReport inspectModel(const ModelSource& source);
InspectReport inspectEqz(const EqzFile& file);
nlohmann::ordered_json toJson(const InspectReport& report);

}  // namespace eq
