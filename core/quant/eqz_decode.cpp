#include "quant/eqz_decode.h"

#include "codec/rans.h"
#include "common/error.h"
#include "common/units.h"
#include "format/safetensors.h"
#include "quant/baseline.h"
#include "quant/tensor_quantizer.h"

#include <cstring>

namespace eq {
namespace {

std::pair<std::int64_t, std::int64_t> rowsCols(const EqzFile& f, const EqzTensor& t) {
  if (t.shape.size() < 2) fail(Errc::Corrupt, "{}: compressed tensor \"{}\" is not a matrix", f.path().string(), t.name);
  const std::int64_t cols = t.shape.back();
  return {cols ? static_cast<std::int64_t>(t.numel() / static_cast<std::uint64_t>(cols)) : 0, cols};
}

}  // namespace

std::vector<std::byte> decodeTensor(const EqzFile& file, const EqzTensor& t, ThreadPool* pool, DType& dtype) {
  const std::string label = fmt::format("{}: tensor \"{}\"", file.path().string(), t.name);
  if (t.encoding == Encoding::Raw) {
    const auto b = file.sectionBytes(t, "data");
    if (b.size() != t.numel() * dtypeSize(t.dtype))
      fail(Errc::Corrupt, "{}: {} bytes for shape {} of {}", label, b.size(), shapeString(t.shape), dtypeName(t.dtype));
    dtype = t.dtype;
    return {b.begin(), b.end()};
  }
  const auto [rows, cols] = rowsCols(file, t);
  dtype = DType::BF16;
  if (t.encoding == Encoding::EntQuant) {
    const auto format = quant::parseCodeFormat(t.codeFormat);
    if (!format) fail(Errc::Corrupt, "{}: unknown code format \"{}\"", label, t.codeFormat);
    const auto sb = file.sectionBytes(t, "scales");
    if (sb.size() != static_cast<std::size_t>(rows) * 2)
      fail(Errc::Corrupt, "{}: {} bytes of scales for {} rows", label, sb.size(), rows);
    const auto stream = file.sectionBytes(t, "stream");
    codec::ransParseExpecting(stream, t.numel(), label);
    requireMemory(t.numel() * 3, label);  // the bf16 result and the codes
    std::vector<std::uint16_t> scales(static_cast<std::size_t>(rows));
    std::memcpy(scales.data(), sb.data(), sb.size());
    std::vector<std::byte> out(t.numel() * 2);
    quant::dequantizeTensor(*format, stream, scales, rows, cols, reinterpret_cast<std::uint16_t*>(out.data()), label,
                            pool);
    return out;
  }
  const auto method = quant::parseBaselineMethod(encodingName(t.encoding));
  if (!method) fail(Errc::Unsupported, "{}: unknown encoding \"{}\"", label, encodingName(t.encoding));
  const auto& idx = file.index();
  int group = 64;
  for (const auto& e : idx["tensors"])
    if (e.is_object() && e.contains("name") && e["name"].is_string() &&
        e["name"].get_ref<const std::string&>() == t.name && e.contains("group_size")) {
      const auto& g = e["group_size"];
      if (!g.is_number_unsigned() || g.get<std::uint64_t>() > 1u << 20)
        fail(Errc::Corrupt, "{}: group_size {} is not a group size", label, g.dump());
      group = static_cast<int>(g.get<std::uint64_t>());
    }
  const auto b = quant::deserializeBaseline(file.sectionBytes(t, "payload"), *method, rows, cols, group, label);
  requireMemory(t.numel() * 2, label);
  std::vector<std::byte> out(t.numel() * 2);
  quant::dequantizeBaseline(b, reinterpret_cast<std::uint16_t*>(out.data()));
  return out;
}

}  // namespace eq
