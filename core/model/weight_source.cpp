#include "model/weight_source.h"

#include "common/error.h"
#include "common/numerics.h"
#include "common/thread_pool.h"
#include "common/units.h"
#include "codec/rans.h"
#include "quant/eqz_decode.h"

#include <cstring>
#include <map>

namespace eq::model {
namespace {

std::vector<float> toFloats(std::span<const std::byte> b, DType dtype, const std::string& what) {
  if (!isConvertibleToFloat(dtype))
    fail(Errc::Unsupported, "{}: dtype {} is not supported for inference", what, dtypeName(dtype));
  std::vector<float> out(b.size() / dtypeSize(dtype));
  convertToFloat(dtype, b.data(), out.size(), out.data());
  return out;
}

Linear toLinear(std::span<const std::byte> b, DType dtype, const std::vector<std::int64_t>& shape, const std::string& what) {
  if (shape.size() != 2) fail(Errc::ShapeMismatch, "{}: expected a matrix, got shape {}", what, shapeString(shape));
  Linear l;
  l.rows = shape[0];
  l.cols = shape[1];
  if (dtype == DType::BF16) {
    l.kind = Linear::Kind::BF16;
    l.bf16.resize(b.size() / 2);
    if (!b.empty()) std::memcpy(l.bf16.data(), b.data(), b.size());  // an empty tensor's data may be null
  } else {
    l.kind = Linear::Kind::F32;
    const std::vector<float> f = toFloats(b, dtype, what);
    l.f32.assign(f.begin(), f.end());
  }
  return l;
}

class CheckpointWeights final : public WeightSource {
 public:
  explicit CheckpointWeights(std::unique_ptr<ModelSource> owned) : CheckpointWeights(*owned) { owned_ = std::move(owned); }
  explicit CheckpointWeights(const ModelSource& src) : src_(&src) {
    if (!src_->config()) fail(Errc::BadConfig, "{}: no config.json, so the model cannot be run", src_->input().string());
  }
  const ModelConfig& config() const override { return *src_->config(); }
  bool has(const std::string& name) const override { return src_->find(name) != nullptr; }
  std::vector<float> floats(const std::string& name) const override {
    const ModelTensor& t = get(name);
    return toFloats(src_->data(t), t.info->dtype, what(name));
  }
  Linear linear(const std::string& name) const override {
    const ModelTensor& t = get(name);
    return toLinear(src_->data(t), t.info->dtype, t.info->shape, what(name));
  }
  std::string label() const override { return src_->input().string(); }

 private:
  std::string what(const std::string& name) const { return fmt::format("{}: tensor \"{}\"", label(), name); }
  const ModelTensor& get(const std::string& name) const {
    const ModelTensor* t = src_->find(name);
    if (!t) fail(Errc::MissingTensor, "{}: the model has no tensor \"{}\"", label(), name);
    return *t;
  }
  std::unique_ptr<ModelSource> owned_;
  const ModelSource* src_;
};

class EqzWeights final : public WeightSource {
 public:
  EqzWeights(std::unique_ptr<const EqzFile> owned, ThreadPool& pool) : EqzWeights(*owned, pool) {
    owned_ = std::move(owned);
  }
  EqzWeights(const EqzFile& file, ThreadPool& pool) : file_(file), pool_(pool) {
    const auto cfg = eqzModelConfig(file_);
    if (!cfg) fail(Errc::BadConfig, "{}: holds no config.json, so the model cannot be run", label());
    config_ = *cfg;
    for (std::size_t i = 0; i < file_.tensors().size(); ++i) byName_[file_.tensors()[i].name] = i;
  }
  const ModelConfig& config() const override { return config_; }
  bool has(const std::string& name) const override { return byName_.count(name) != 0; }
  std::vector<float> floats(const std::string& name) const override {
    DType dt;
    const auto bytes = decodeTensor(file_, get(name), &pool_, dt);
    return toFloats(bytes, dt, what(name));
  }
  Linear linear(const std::string& name) const override {
    const EqzTensor& t = get(name);
    if (t.encoding != Encoding::EntQuant) {
      DType dt;
      const auto bytes = decodeTensor(file_, t, &pool_, dt);
      return toLinear(bytes, dt, t.shape, what(name));
    }
    if (t.shape.size() != 2) fail(Errc::ShapeMismatch, "{}: expected a matrix, got shape {}", what(name), shapeString(t.shape));
    Linear l;
    l.kind = Linear::Kind::Codes;
    l.rows = t.shape[0];
    l.cols = t.shape[1];
    const auto format = quant::parseCodeFormat(t.codeFormat);
    if (!format) fail(Errc::Corrupt, "{}: unknown code format \"{}\"", what(name), t.codeFormat);
    l.format = *format;
    const auto stream = file_.sectionBytes(t, "stream");
    const auto sb = file_.sectionBytes(t, "scales");
    if (sb.size() != static_cast<std::size_t>(l.rows) * 2) fail(Errc::Corrupt, "{}: scale count mismatch", what(name));
    requireMemory(codec::ransParseExpecting(stream, t.numel(), what(name)).symbols, what(name));
    l.codes.resize(static_cast<std::size_t>(t.numel()));
    codec::ransDecode(stream, l.codes, what(name), &pool_);
    l.scales.resize(static_cast<std::size_t>(l.rows));
    for (std::int64_t r = 0; r < l.rows; ++r) {
      std::uint16_t h;
      std::memcpy(&h, sb.data() + 2 * r, 2);
      l.scales[static_cast<std::size_t>(r)] = bf16ToF32(h);
    }
    return l;
  }
  std::string label() const override { return file_.path().string(); }

 private:
  std::string what(const std::string& name) const { return fmt::format("{}: tensor \"{}\"", label(), name); }
  const EqzTensor& get(const std::string& name) const {
    const auto it = byName_.find(name);
    if (it == byName_.end()) fail(Errc::MissingTensor, "{}: the model has no tensor \"{}\"", label(), name);
    const EqzTensor& t = file_.tensors()[it->second];
    for (const auto& [key, s] : t.sections)
      if (xxh3(file_.bytes(s)) != s.xxh3)
        fail(Errc::Corrupt, "{}: section \"{}\" fails its checksum; the file is corrupt", what(name), key);
    return t;
  }
  std::unique_ptr<const EqzFile> owned_;
  const EqzFile& file_;
  ThreadPool& pool_;
  ModelConfig config_;
  std::map<std::string, std::size_t> byName_;
};

}  // namespace

std::unique_ptr<WeightSource> WeightSource::of(const ModelSource& source) {
  return std::make_unique<CheckpointWeights>(source);
}

std::unique_ptr<WeightSource> WeightSource::of(const EqzFile& file, ThreadPool& pool) {
  return std::make_unique<EqzWeights>(file, pool);
}

std::unique_ptr<WeightSource> WeightSource::open(const std::filesystem::path& path, ThreadPool& pool) {
  if (isEqzPath(path)) return std::make_unique<EqzWeights>(std::make_unique<const EqzFile>(EqzFile::open(path)), pool);
  return std::make_unique<CheckpointWeights>(ModelSource::open(path));
}

}  // namespace eq::model
