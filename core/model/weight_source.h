// Where the inference engine gets its weights: an original checkpoint (ModelSource: folder, file, archive) or an
// .eqz file. Compressed tensors arrive as 8-bit codes + row scales (decoded from rANS once, at load); the rest
// as f32 or bf16. Errors name the file and the tensor.
#pragma once

#include "format/eqz.h"
#include "format/model_config.h"
#include "model/model_source.h"
#include "model/linear.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace eq::model {

class WeightSource {
 public:
  // A folder / .safetensors / archive, or an .eqz file (by extension).
  static std::unique_ptr<WeightSource> open(const std::filesystem::path& path, ThreadPool& pool);
  // An original checkpoint already open; `source` must outlive the result.
  static std::unique_ptr<WeightSource> of(const ModelSource& source);
  // An .eqz file already open; `file` and `pool` must outlive the result.
  static std::unique_ptr<WeightSource> of(const EqzFile& file, ThreadPool& pool);
  virtual ~WeightSource() = default;

  virtual const ModelConfig& config() const = 0;
  virtual bool has(const std::string& name) const = 0;
  // Any tensor, flattened to floats.
  virtual std::vector<float> floats(const std::string& name) const = 0;
  // A 2-D tensor [rows, cols] as a Linear in its most compact form.
  virtual Linear linear(const std::string& name) const = 0;
  virtual std::string label() const = 0;
};

}  // namespace eq::model
