// An arbitrary tokenizer.json: Tokenizer::fromJson either refuses it with an Error or builds a tokenizer that
// encodes and decodes a few texts without crashing.
#include "fuzz_util.h"
#include "text/tokenizer.h"

#include <nlohmann/json.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  try {
    const auto tok = eq::text::Tokenizer::fromJson(json, "fuzz/tokenizer.json");
    for (const char* text : {"", "Hello world", " héllo  wörld\n\n\t1234 <s></s><|endoftext|>", "日本語のテキスト 🙂"}) {
      const auto ids = tok.encode(text, true);
      (void)tok.decode(ids, false);
      (void)tok.decode(ids, true);
    }
    (void)tok.decode({-1, 0, 1, 2147483647}, false);
    (void)tok.token(-5);
    (void)tok.vocabSize();
  } catch (const eq::Error&) {
  }
  return 0;
}
