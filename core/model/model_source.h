// Opening a model to compress or run: a HuggingFace folder (single or sharded safetensors), one .safetensors
// file, or an archive of a model folder. Everything is validated before use; tensors stay memory-mapped.
#pragma once

#include "common/progress.h"
#include "format/archive.h"
#include "format/model_config.h"
#include "format/safetensors.h"
#include "model/tensor_role.h"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace eq {

enum class SourceKind { Folder, SafetensorsFile, Archive, Eqz };  // Eqz: a compressed file (inspect only)
std::string_view sourceKindName(SourceKind kind);

struct ModelTensor {
  const TensorInfo* info = nullptr;  // owned by files()[file]
  std::size_t file = 0;
  TensorClass cls;
};

struct OpenOptions {
  KeepGoingFn keepGoing;  // asked while extracting archives; false cancels with Error(Cancelled)
  ProgressFn progress;    // Phase::Extract while an archive is unpacked
};

class ModelSource {
 public:
  static std::unique_ptr<ModelSource> open(const std::filesystem::path& path, const OpenOptions& options = {});

  SourceKind kind() const { return kind_; }
  const std::filesystem::path& input() const { return input_; }
  const std::filesystem::path& root() const { return root_; }  // folder holding the model files
  const std::vector<SafetensorsFile>& files() const { return files_; }
  const std::vector<ModelTensor>& tensors() const { return tensors_; }  // natural name order
  const ModelTensor* find(const std::string& name) const;
  std::span<const std::byte> data(const ModelTensor& tensor) const { return files_[tensor.file].data(*tensor.info); }
  // Done with this tensor for now: its pages leave the resident set (see MappedFile::release).
  void release(const ModelTensor& tensor) const { files_[tensor.file].release(*tensor.info); }

  const std::optional<ModelConfig>& config() const { return config_; }
  const std::optional<GenerationConfig>& generationConfig() const { return generation_; }
  // End-of-generation ids: generation_config.json's eos ids, else config.json's.
  std::vector<std::int64_t> endOfGenerationIds() const;
  // Other files of the model folder (tokenizer.json, chat_template.jinja, ...): name -> size in bytes.
  const std::map<std::string, std::uint64_t>& otherFiles() const { return otherFiles_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  void openFolder(const std::filesystem::path& folder);
  void openShardsFromIndex(const std::filesystem::path& index);
  void addFile(const std::filesystem::path& path);
  void indexTensors();
  void readConfigs(const std::filesystem::path& folder);

  SourceKind kind_ = SourceKind::Folder;
  std::filesystem::path input_, root_;
  std::unique_ptr<TempDir> temp_;
  std::vector<SafetensorsFile> files_;
  std::vector<ModelTensor> tensors_;
  std::map<std::string, std::size_t, std::less<>> byName_;
  std::map<std::string, std::string> indexMap_;  // tensor -> shard file, when sharded
  std::optional<ModelConfig> config_;
  std::optional<GenerationConfig> generation_;
  std::map<std::string, std::uint64_t> otherFiles_;
  std::vector<std::string> warnings_;
};

}  // namespace eq
