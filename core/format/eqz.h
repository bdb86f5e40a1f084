// The .eqz container (docs/FORMAT.md): one self-contained file holding a compressed model. A 64-byte preamble
// (magic, version, where the JSON index is, checksums), 64-byte aligned data sections (rANS streams, row scales,
// raw tensors, embedded model files), and a JSON index at the end that names every section with its xxHash3.
// Written through AtomicFile: a cancelled or failed write leaves nothing behind.
#pragma once

#include "common/atomic_file.h"
#include "common/mapped_file.h"
#include "format/dtype.h"
#include "format/model_config.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace eq {

inline constexpr std::uint16_t kEqzMajor = 1, kEqzMinor = 0;
inline constexpr std::uint64_t kEqzAlign = 64;
inline constexpr std::uint64_t kEqzMaxElements = 1ull << 60;  // a tensor's elements; EqzFile::open refuses more

struct EqzSection {
  std::uint64_t offset = 0, bytes = 0, xxh3 = 0;
  nlohmann::json toJson() const;
};

std::uint64_t xxh3(std::span<const std::byte> data);
// Bytes a section of `bytes` occupies in the file: rounded up to its 64-byte slot.
std::uint64_t eqzSlotBytes(std::uint64_t bytes);

class EqzWriter {
 public:
  explicit EqzWriter(const std::filesystem::path& path);
  // Appends one section (64-byte aligned) and returns where it went.
  EqzSection addSection(std::span<const std::byte> data);
  // Writes the JSON index and the preamble, fsyncs and renames into place.
  void finish(const nlohmann::json& index);
  std::uint64_t bytesWritten() const { return file_.bytesWritten(); }

 private:
  AtomicFile file_;
};

// How a tensor is stored: as it was (raw), as EntQuant codes, or as a classic baseline (docs/FORMAT.md).
enum class Encoding : std::uint8_t { Raw, EntQuant, Rtn4, Rtn3, Rtn2, Nf4 };
std::string_view encodingName(Encoding encoding);  // "raw", "entquant", "rtn4", "rtn3", "rtn2", "nf4"
std::optional<Encoding> parseEncoding(std::string_view name);

struct EqzTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  DType dtype = DType::BF16;     // the original checkpoint dtype
  Encoding encoding = Encoding::Raw;
  std::string codeFormat;        // entquant: "fp8" | "int8"
  std::vector<std::pair<std::string, EqzSection>> sections;  // raw: "data"; entquant: "stream", "scales"; baseline: "payload"
  nlohmann::json stats;

  const EqzSection* section(const std::string& key) const;
  std::uint64_t numel() const;
  std::uint64_t storedBytes() const;  // sum of its sections, with their alignment padding
};

class EqzFile {
 public:
  // Maps the file and validates preamble, index checksum, and that every section lies inside the data area,
  // aligned and not overlapping. Throws Error naming the file.
  static EqzFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return map_.path(); }
  std::uint64_t fileSize() const { return map_.size(); }
  const nlohmann::json& index() const { return index_; }
  const std::vector<EqzTensor>& tensors() const { return tensors_; }
  std::span<const std::byte> bytes(const EqzSection& s) const { return map_.bytes().subspan(s.offset, s.bytes); }
  // The bytes of the section `key` a tensor of its encoding needs; Error(Corrupt) naming the file, the tensor and
  // the key where the index lacks it.
  std::span<const std::byte> sectionBytes(const EqzTensor& t, const char* key) const;
  // Embedded model files (config.json, tokenizer.json, ...): name -> section.
  const std::vector<std::pair<std::string, EqzSection>>& files() const { return files_; }
  const EqzSection* file(const std::string& name) const;

 private:
  MappedFile map_;
  nlohmann::json index_;
  std::vector<EqzTensor> tensors_;
  std::vector<std::pair<std::string, EqzSection>> files_;
};

bool isEqzPath(const std::filesystem::path& path);

// The model config stored in the file's index, if any. Throws Error(BadConfig / InvalidJson) naming the file.
std::optional<ModelConfig> eqzModelConfig(const EqzFile& file);

}  // namespace eq
