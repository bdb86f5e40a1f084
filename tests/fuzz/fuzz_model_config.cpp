// An arbitrary config.json / generation_config.json: parsed into a ModelConfig / GenerationConfig or refused with
// an Error; an accepted config has positive sizes that divide as the engine needs.
#include "format/model_config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  try {
    (void)eq::parseModelConfig(json, "fuzz/config.json");
  } catch (const eq::Error&) {
  }
  try {
    (void)eq::parseGenerationConfig(json, "fuzz/generation_config.json");
  } catch (const eq::Error&) {
  }
  return 0;
}
