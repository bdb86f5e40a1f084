// An arbitrary archive opened as a model: extracted into a private temporary folder (never outside it, no links or
// devices) or refused with an Error naming the file.
#include "model/model_source.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1u << 20)) return 0;
  const auto path = eqfuzz::asFile(data, size, "fuzz.tar.gz");
  try {
    auto source = eq::ModelSource::open(path);
    for (const auto& t : source->tensors()) (void)source->data(t);
  } catch (const eq::Error&) {
  }
  return 0;
}
