// An arbitrary .eqz file through everything that reads one: open (preamble, index, sections), inspect, the
// embedded config and chat template, verify, decoding every tensor, and the inference engine's weight loader.
// Mutated files would almost all stop at a checksum, so the target first repairs them: it recomputes every
// section's XXH3 in an index that still parses, then the index's and the preamble's (the checksum tests
// themselves are in tests/data/corrupt and test_pipeline).
#include "common/thread_pool.h"
#include "format/eqz.h"
#include "fuzz_util.h"
#include "model/weight_source.h"
#include "pipeline/eqz_tools.h"
#include "quant/eqz_decode.h"
#include "pipeline/inspect.h"
#include "text/chat_template.h"

#include <fmt/format.h>

#include <cstring>
#include <vector>

namespace {
std::uint64_t getU64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
void putU64(std::uint8_t* p, std::uint64_t v) { std::memcpy(p, &v, 8); }

void fixSections(nlohmann::json& j, const std::vector<std::uint8_t>& file, std::uint64_t dataEnd) {
  if (j.is_object() && j.contains("offset") && j.contains("bytes") && j["offset"].is_number_unsigned() &&
      j["bytes"].is_number_unsigned()) {
    const auto off = j["offset"].get<std::uint64_t>(), n = j["bytes"].get<std::uint64_t>();
    if (off <= dataEnd && n <= dataEnd - off)
      j["xxh3"] = fmt::format("{:016x}", eq::xxh3(eqfuzz::bytes(file.data() + off, n)));
  }
  if (j.is_structured())
    for (auto& v : j) fixSections(v, file, dataEnd);
}

std::vector<std::uint8_t> repair(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> f(data, data + size);
  if (size < 64) return f;
  const std::uint64_t off = getU64(f.data() + 16), len = getU64(f.data() + 24);
  if (off >= 64 && off <= size && len <= size - off) {
    auto index = nlohmann::json::parse(f.begin() + off, f.begin() + off + len, nullptr, false);
    std::string text(f.begin() + off, f.begin() + off + len);
    if (!index.is_discarded()) {
      fixSections(index, f, off);
      text = index.dump();
    }
    f.resize(off);
    f.insert(f.end(), text.begin(), text.end());
    putU64(f.data() + 24, text.size());
    putU64(f.data() + 32, eq::xxh3(eqfuzz::bytes(f.data() + off, text.size())));
    putU64(f.data() + 40, f.size());
  }
  putU64(f.data() + 56, eq::xxh3(eqfuzz::bytes(f.data(), 56)));
  return f;
}

template <typename F>
void tolerate(F&& f) {
  try {
    f();
  } catch (const eq::Error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static eq::ThreadPool pool(2);
  const auto repaired = repair(data, size);
  const auto path = eqfuzz::asFile(repaired.data(), repaired.size(), "fuzz.eqz");
  tolerate([&] {
    const auto file = eq::EqzFile::open(path);
    tolerate([&] { (void)eq::toJson(eq::inspectEqz(file)); });
    tolerate([&] { (void)eq::eqzModelConfig(file); });
    tolerate([&] { (void)eq::text::loadChatTemplate(path); });
    tolerate([&] { (void)eq::verifyEqz(file, pool); });
    for (const auto& t : file.tensors())
      tolerate([&] {
        eq::DType dtype;
        const auto out = eq::decodeTensor(file, t, &pool, dtype);
        eqfuzz::check(out.size() == t.numel() * eq::dtypeSize(dtype), "decoded size is numel x dtype size");
      });
    tolerate([&] {
      const auto weights = eq::model::WeightSource::open(path, pool);
      for (const auto& t : file.tensors()) {
        if (!weights->has(t.name)) continue;
        tolerate([&] { (void)weights->floats(t.name); });
        if (t.shape.size() == 2) tolerate([&] { (void)weights->linear(t.name); });
      }
    });
  });
  return 0;
}
