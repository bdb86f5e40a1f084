#include "format/safetensors.h"

#include "common/error.h"
#include "common/json.h"

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace eq {
namespace {

using nlohmann::json;

std::uint64_t readU64le(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

TensorInfo parseEntry(const std::string& label, const std::string& name, const json& entry,
                      std::uint64_t dataSize) {
  auto bad = [&](std::string_view why) {
    fail(Errc::InvalidJson, "{}: tensor \"{}\": {}", label, name, why);
  };
  if (!entry.is_object()) bad("entry is not a JSON object");
  const auto dt = entry.find("dtype");
  const auto sh = entry.find("shape");
  const auto off = entry.find("data_offsets");
  if (dt == entry.end() || !dt->is_string()) bad("missing or non-string \"dtype\"");
  if (sh == entry.end() || !sh->is_array()) bad("missing or non-array \"shape\"");
  if (off == entry.end() || !off->is_array() || off->size() != 2) bad("\"data_offsets\" must be [begin, end]");

  TensorInfo t;
  t.name = name;
  const auto dtype = parseDType(dt->get_ref<const std::string&>());
  if (!dtype) fail(Errc::UnknownDtype, "{}: tensor \"{}\": unknown dtype \"{}\"", label, name, dt->get<std::string>());
  t.dtype = *dtype;

  std::uint64_t numel = 1;
  bool overflow = false;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers");
    const auto v = d.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(INT64_MAX)) bad("shape entry out of range");
    t.shape.push_back(static_cast<std::int64_t>(v));
    overflow |= __builtin_mul_overflow(numel, v, &numel);
  }
  std::uint64_t need = 0;
  overflow |= __builtin_mul_overflow(numel, static_cast<std::uint64_t>(dtypeSize(t.dtype)), &need);
  t.numel = numel;

  for (const auto& o : *off)
    if (!o.is_number_unsigned()) bad("\"data_offsets\" must be non-negative integers");
  t.begin = (*off)[0].get<std::uint64_t>();
  t.end = (*off)[1].get<std::uint64_t>();
  if (t.begin > t.end)
    fail(Errc::Corrupt, "{}: tensor \"{}\": data_offsets [{}, {}] end before they begin", label, name, t.begin, t.end);
  if (overflow || need != t.end - t.begin)
    fail(Errc::ShapeMismatch, "{}: tensor \"{}\": shape {} of {} needs {} bytes but data_offsets [{}, {}] span {}",
         label, name, shapeString(t.shape), dtypeName(t.dtype), overflow ? std::string("too many")
         : std::to_string(need), t.begin, t.end, t.end - t.begin);
  if (t.end > dataSize)
    fail(Errc::Truncated, "{}: tensor \"{}\": data_offsets [{}, {}] lie outside the data section ({} bytes); "
         "the file is truncated or corrupt", label, name, t.begin, t.end, dataSize);
  return t;
}

}  // namespace

std::string shapeString(const std::vector<std::int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

SafetensorsHeader parseSafetensors(std::span<const std::byte> file, const std::string& label) {
  if (file.size() < 8)
    fail(Errc::Truncated, "{}: file is too small to be a safetensors file ({} bytes)", label, file.size());
  SafetensorsHeader h;
  h.headerBytes = readU64le(file.data());
  if (h.headerBytes > kSafetensorsMaxHeader)
    fail(Errc::Corrupt, "{}: header length {} exceeds the limit of {} bytes; not a safetensors file?", label,
         h.headerBytes, kSafetensorsMaxHeader);
  if (h.headerBytes > file.size() - 8)
    fail(Errc::Truncated, "{}: header length {} exceeds the file size ({} bytes); the file is truncated", label,
         h.headerBytes, file.size());
  const auto* text = reinterpret_cast<const char*>(file.data() + 8);
  if (h.headerBytes < 2 || text[0] != '{')
    fail(Errc::InvalidJson, "{}: header does not start with a JSON object; not a safetensors file?", label);

  const json root = parseJson({text, h.headerBytes}, label + ": header is");
  if (!root.is_object()) fail(Errc::InvalidJson, "{}: header is not a JSON object", label);

  const std::uint64_t dataSize = file.size() - 8 - h.headerBytes;
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(Errc::InvalidJson, "{}: __metadata__ is not a JSON object", label);
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          fail(Errc::InvalidJson, "{}: __metadata__ value of \"{}\" is not a string", label, mk);
        h.metadata.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    h.tensors.push_back(parseEntry(label, key, value, dataSize));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (std::size_t i = 1; i < h.tensors.size(); ++i) {
    const auto& a = h.tensors[i - 1];
    const auto& b = h.tensors[i];
    if (b.begin < a.end)
      fail(Errc::Corrupt, "{}: tensors \"{}\" and \"{}\" overlap (bytes [{}, {}) and [{}, {}))", label, a.name,
           b.name, a.begin, a.end, b.begin, b.end);
  }
  return h;
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile f;
  f.map_ = MappedFile(path);
  f.header_ = parseSafetensors(f.map_.bytes(), path.string());
  for (std::size_t i = 0; i < f.header_.tensors.size(); ++i) f.byName_.emplace(f.header_.tensors[i].name, i);
  return f;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  const auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : &header_.tensors[it->second];
}

std::span<const std::byte> SafetensorsFile::data(const TensorInfo& tensor) const {
  return map_.bytes().subspan(header_.dataOffset() + tensor.begin, tensor.bytes());
}

}  // namespace eq
