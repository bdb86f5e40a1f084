#include "format/eqz.h"

#include "common/error.h"
#include "common/json.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace eq {
namespace {

constexpr std::array<unsigned char, 8> kMagic{'E', 'Q', 'Z', 0, '\r', '\n', 0x1a, '\n'};
constexpr std::size_t kPreamble = 64;

void putU64(std::byte* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
}
std::uint64_t getU64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}
std::uint16_t getU16(const std::byte* p) {
  return static_cast<std::uint16_t>(static_cast<std::uint8_t>(p[0]) | (static_cast<std::uint8_t>(p[1]) << 8));
}

std::string hex64(std::uint64_t v) { return fmt::format("{:016x}", v); }


EqzSection sectionFrom(const nlohmann::json& j, const std::string& label, const std::string& what) {
  if (!j.is_object() || !j.contains("offset") || !j.contains("bytes") || !j.contains("xxh3") ||
      !j["offset"].is_number_unsigned() || !j["bytes"].is_number_unsigned() || !j["xxh3"].is_string())
    fail(Errc::InvalidJson, "{}: {} has no valid section (offset, bytes, xxh3)", label, what);
  EqzSection s;
  s.offset = j["offset"].get<std::uint64_t>();
  s.bytes = j["bytes"].get<std::uint64_t>();
  const std::string h = j["xxh3"].get<std::string>();
  if (h.size() != 16 || h.find_first_not_of("0123456789abcdef") != std::string::npos)
    fail(Errc::InvalidJson, "{}: {} has a malformed checksum \"{}\"", label, what, h);
  s.xxh3 = std::stoull(h, nullptr, 16);
  return s;
}

}  // namespace

std::uint64_t eqzSlotBytes(std::uint64_t bytes) { return (bytes + kEqzAlign - 1) / kEqzAlign * kEqzAlign; }

std::uint64_t xxh3(std::span<const std::byte> data) { return XXH3_64bits(data.data(), data.size()); }

nlohmann::json EqzSection::toJson() const { return {{"offset", offset}, {"bytes", bytes}, {"xxh3", hex64(xxh3)}}; }

bool isEqzPath(const std::filesystem::path& path) { return path.extension() == ".eqz"; }

EqzWriter::EqzWriter(const std::filesystem::path& path) : file_(path) {
  const std::array<std::byte, kPreamble> zero{};
  file_.write(zero);  // the preamble is filled in by finish()
}

EqzSection EqzWriter::addSection(std::span<const std::byte> data) {
  static const std::array<std::byte, kEqzAlign> pad{};
  const std::uint64_t at = eqzSlotBytes(file_.bytesWritten());
  file_.write(std::span(pad).first(at - file_.bytesWritten()));
  file_.write(data);
  return {at, data.size(), xxh3(data)};
}

void EqzWriter::finish(const nlohmann::json& index) {
  const std::string text = index.dump();
  const EqzSection s = addSection(std::as_bytes(std::span(text)));
  std::array<std::byte, kPreamble> pre{};
  std::memcpy(pre.data(), kMagic.data(), kMagic.size());
  pre[8] = static_cast<std::byte>(kEqzMajor & 0xFF);
  pre[9] = static_cast<std::byte>(kEqzMajor >> 8);
  pre[10] = static_cast<std::byte>(kEqzMinor & 0xFF);
  pre[11] = static_cast<std::byte>(kEqzMinor >> 8);
  putU64(pre.data() + 16, s.offset);
  putU64(pre.data() + 24, s.bytes);
  putU64(pre.data() + 32, s.xxh3);
  putU64(pre.data() + 40, file_.bytesWritten());
  putU64(pre.data() + 56, xxh3(std::span(pre).first(56)));
  file_.writeAt(0, pre);
  file_.commit();
}

const EqzSection* EqzTensor::section(const std::string& key) const {
  for (const auto& [k, s] : sections)
    if (k == key) return &s;
  return nullptr;
}

std::uint64_t EqzTensor::numel() const {
  std::uint64_t n = 1;
  for (auto d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

std::uint64_t EqzTensor::storedBytes() const {
  std::uint64_t b = 0;
  for (const auto& [k, s] : sections) b += eqzSlotBytes(s.bytes);
  return b;
}

std::span<const std::byte> EqzFile::sectionBytes(const EqzTensor& t, const char* key) const {
  const EqzSection* s = t.section(key);
  if (!s)
    fail(Errc::Corrupt, "{}: tensor \"{}\" ({}) has no \"{}\" section", path().string(), t.name,
         encodingName(t.encoding), key);
  return bytes(*s);
}

const EqzSection* EqzFile::file(const std::string& name) const {
  for (const auto& [n, s] : files_)
    if (n == name) return &s;
  return nullptr;
}

EqzFile EqzFile::open(const std::filesystem::path& path) {
  EqzFile f;
  f.map_ = MappedFile(path);
  const std::string label = path.string();
  const auto b = f.map_.bytes();
  if (b.size() < kPreamble) fail(Errc::Truncated, "{}: too small to be an .eqz file ({} bytes)", label, b.size());
  if (std::memcmp(b.data(), kMagic.data(), kMagic.size()) != 0)
    fail(Errc::Unsupported, "{}: not an .eqz file (wrong magic bytes)", label);
  const std::uint16_t major = getU16(b.data() + 8), minor = getU16(b.data() + 10);
  if (major != kEqzMajor)
    fail(Errc::Unsupported, "{}: .eqz format version {}.{}; this build reads version {}.x", label, major, minor, kEqzMajor);
  if (getU64(b.data() + 56) != xxh3(b.first(56)))
    fail(Errc::Corrupt, "{}: the preamble checksum does not match; the file is corrupt", label);
  const std::uint64_t declared = getU64(b.data() + 40);
  if (declared != b.size())
    fail(Errc::Truncated, "{}: the file is {} bytes but its preamble says {}; it is truncated or was modified", label,
         b.size(), declared);
  const std::uint64_t indexAt = getU64(b.data() + 16), indexBytes = getU64(b.data() + 24);
  if (indexAt < kPreamble || indexAt > b.size() || indexBytes > b.size() - indexAt)
    fail(Errc::Corrupt, "{}: the index lies outside the file", label);
  const auto indexSpan = b.subspan(indexAt, indexBytes);
  if (xxh3(indexSpan) != getU64(b.data() + 32))
    fail(Errc::Corrupt, "{}: the index checksum does not match; the file is corrupt", label);
  f.index_ = parseJson({reinterpret_cast<const char*>(indexSpan.data()), indexSpan.size()}, label + ": the index is");
  const auto& idx = f.index_;
  if (!idx.is_object() || !idx.contains("tensors") || !idx["tensors"].is_array())
    fail(Errc::InvalidJson, "{}: the index has no tensor list", label);

  std::vector<std::pair<EqzSection, std::string>> all;
  auto checkSection = [&](const EqzSection& s, const std::string& what) {
    if (s.offset % kEqzAlign != 0 || s.offset < kPreamble || s.offset > indexAt || s.bytes > indexAt - s.offset)
      fail(Errc::Corrupt, "{}: {} lies outside the data area", label, what);
    all.emplace_back(s, what);
  };
  for (const auto& t : idx["tensors"]) {
    EqzTensor et;
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("shape") ||
        !t["shape"].is_array() || !t.contains("dtype") || !t["dtype"].is_string() || !t.contains("encoding") ||
        !t["encoding"].is_string() || !t.contains("sections") || !t["sections"].is_object())
      fail(Errc::InvalidJson, "{}: malformed tensor entry in the index", label);
    et.name = t["name"].get<std::string>();
    std::uint64_t numel = 1;
    for (const auto& d : t["shape"]) {
      if (!d.is_number_unsigned()) fail(Errc::InvalidJson, "{}: tensor \"{}\": bad shape", label, et.name);
      const auto n = d.get<std::uint64_t>();
      // the element count times 8 (a tensor as f64 or as pointers) must fit 64 bits
      if (n > kEqzMaxElements || (n && numel > kEqzMaxElements / n))
        fail(Errc::Corrupt, "{}: tensor \"{}\": shape {} has too many elements", label, et.name, t["shape"].dump());
      numel *= n;
      et.shape.push_back(static_cast<std::int64_t>(n));
    }
    const auto dt = parseDType(t["dtype"].get<std::string>());
    if (!dt) fail(Errc::UnknownDtype, "{}: tensor \"{}\": unknown dtype \"{}\"", label, et.name, t["dtype"].get<std::string>());
    et.dtype = *dt;
    const auto encoding = parseEncoding(t["encoding"].get<std::string>());
    if (!encoding)
      fail(Errc::Unsupported, "{}: tensor \"{}\": unknown encoding \"{}\" (written by a newer version?)", label,
           et.name, t["encoding"].get<std::string>());
    et.encoding = *encoding;
    if (t.contains("code_format") && t["code_format"].is_string()) et.codeFormat = t["code_format"].get<std::string>();
    for (const auto& [key, sj] : t["sections"].items()) {
      const std::string what = fmt::format("section \"{}\" of tensor \"{}\"", key, et.name);
      et.sections.emplace_back(key, sectionFrom(sj, label, what));
      checkSection(et.sections.back().second, what);
    }
    if (t.contains("stats")) et.stats = t["stats"];
    f.tensors_.push_back(std::move(et));
  }
  if (idx.contains("files") && idx["files"].is_array())
    for (const auto& fj : idx["files"]) {
      if (!fj.is_object() || !fj.contains("name") || !fj["name"].is_string() || !fj.contains("section"))
        fail(Errc::InvalidJson, "{}: malformed file entry in the index", label);
      const std::string name = fj["name"].get<std::string>();
      const std::string what = fmt::format("embedded file \"{}\"", name);
      f.files_.emplace_back(name, sectionFrom(fj["section"], label, what));
      checkSection(f.files_.back().second, what);
    }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first.offset < b.first.offset; });
  for (std::size_t i = 1; i < all.size(); ++i)
    if (all[i].first.offset < all[i - 1].first.offset + all[i - 1].first.bytes)
      fail(Errc::Corrupt, "{}: {} overlaps {}", label, all[i].second, all[i - 1].second);
  return f;
}

namespace {
constexpr std::string_view kEncodingNames[] = {"raw", "entquant", "rtn4", "rtn3", "rtn2", "nf4"};
}

std::string_view encodingName(Encoding e) { return kEncodingNames[static_cast<std::size_t>(e)]; }

std::optional<Encoding> parseEncoding(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kEncodingNames); ++i)
    if (kEncodingNames[i] == name) return static_cast<Encoding>(i);
  return std::nullopt;
}

std::optional<ModelConfig> eqzModelConfig(const EqzFile& file) {
  const auto it = file.index().find("config");
  if (it == file.index().end() || !it->is_object()) return std::nullopt;
  return parseModelConfig(*it, file.path().string() + " (embedded config.json)");
}

}  // namespace eq
