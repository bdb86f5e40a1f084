// Arbitrary text through the real tokenizers of tests/data/tokenizers (BPE with byte fallback, byte-level BPE,
// SentencePiece-style): invalid UTF-8 is refused with Error(InvalidArgument); valid text encodes, and the
// byte-level tokenizers (gpt2, llama3, qwen2), which have no normalizer, decode back to the same text.
#include "fuzz_util.h"
#include "text/tokenizer.h"

#include <memory>
#include <vector>

namespace {
struct Loaded {
  std::string name;
  eq::text::Tokenizer tok;
  bool roundTrips;
};
std::vector<Loaded>& tokenizers() {
  static std::vector<Loaded> all = [] {
    std::vector<Loaded> v;
    const std::filesystem::path dir = EQ_TEST_DATA "/tokenizers";
    for (const auto& [name, exact] : {std::pair{"gpt2", true}, {"llama3", true}, {"qwen2", true}, {"spm", false}})
      v.push_back({name, eq::text::Tokenizer::fromFile(dir / name / "tokenizer.json"), exact});
    return v;
  }();
  return all;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const auto& t : tokenizers()) {
    std::vector<std::int32_t> ids;
    try {
      ids = t.tok.encode(text, false);
    } catch (const eq::Error& e) {
      eqfuzz::check(e.code() == eq::Errc::InvalidArgument, "encode fails only for invalid UTF-8");
      continue;
    }
    for (auto id : ids) eqfuzz::check(id >= 0 && id < t.tok.vocabSize(), "ids inside the vocabulary");
    const auto back = t.tok.decode(ids, false);
    if (t.roundTrips && back != text) {
      std::fprintf(stderr, "%s: decode(encode(text)) differs\n", t.name.c_str());
      std::abort();
    }
  }
  return 0;
}
