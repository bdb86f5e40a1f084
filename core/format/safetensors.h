// Reading safetensors files: the header is validated completely before any tensor is touched, then the file is
// memory-mapped and tensors are handed out as byte spans. See https://github.com/huggingface/safetensors.
#pragma once

#include "common/mapped_file.h"
#include "format/dtype.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace eq {

inline constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // byte offsets relative to the start of the data section
  std::uint64_t end = 0;
  std::uint64_t numel = 0;

  std::uint64_t bytes() const { return end - begin; }
};

struct SafetensorsHeader {
  std::uint64_t headerBytes = 0;  // the JSON's length (N); data starts at 8 + N
  std::vector<TensorInfo> tensors;  // ordered by data offset
  std::map<std::string, std::string> metadata;  // __metadata__

  std::uint64_t dataOffset() const { return 8 + headerBytes; }
};

// Validates the header of a whole safetensors file held in `file` (a mapping or a buffer). `label` names the file
// in error messages. Checks: length sane and inside the file, JSON well formed, known dtypes, shape x dtype size
// equal to the byte range, ranges inside the data section and not overlapping, __metadata__ string -> string.
SafetensorsHeader parseSafetensors(std::span<const std::byte> file, const std::string& label);

class SafetensorsFile {
 public:
  // Maps and validates the file; throws Error naming the file and the problem.
  static SafetensorsFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return map_.path(); }
  std::uint64_t fileSize() const { return map_.size(); }
  const SafetensorsHeader& header() const { return header_; }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const TensorInfo* find(const std::string& name) const;
  std::span<const std::byte> data(const TensorInfo& tensor) const;
  void release(const TensorInfo& tensor) const { map_.release(header_.dataOffset() + tensor.begin, tensor.bytes()); }

 private:
  MappedFile map_;
  SafetensorsHeader header_;
  std::map<std::string, std::size_t, std::less<>> byName_;
};

std::string shapeString(const std::vector<std::int64_t>& shape);

}  // namespace eq
