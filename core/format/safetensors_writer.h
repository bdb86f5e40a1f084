// Writing safetensors files, streaming: the header is written first (sizes are known up front), then each
// tensor's bytes in order. The file appears only when finish() succeeds (AtomicFile).
#pragma once

#include "common/atomic_file.h"
#include "format/dtype.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace eq {

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t bytes() const;
};

class SafetensorsWriter {
 public:
  SafetensorsWriter(const std::filesystem::path& path, std::vector<TensorSpec> tensors,
                    const std::map<std::string, std::string>& metadata = {});
  // Appends the data of the next tensor (in the order given); the size must match its spec exactly.
  void append(std::span<const std::byte> data);
  void finish();

 private:
  AtomicFile file_;
  std::vector<TensorSpec> tensors_;
  std::size_t next_ = 0;
};

}  // namespace eq
