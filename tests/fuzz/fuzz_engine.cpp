// An arbitrary config.json beside real weights, through the inference engine: the input's first byte picks one of
// the test models (tests/data/models: eight architectures), the rest replaces its config.json. Loading must
// either refuse (sizes that do not match the tensors, impossible values) with an Error or build a model whose
// forward pass over three tokens gives 3 x vocab logits. Integer sizes from a config feed the engine's shape
// arithmetic, so this is where a division by zero or an out-of-bounds read would hide.
#include "common/thread_pool.h"
#include "fuzz_util.h"
#include "model/causal_lm.h"
#include "model/weight_source.h"

#include <array>
#include <vector>

namespace {
constexpr std::array kModels{"tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "tiny-phi3",
                             "tiny-mixtral", "tiny-gemma", "tiny-gemma2", "tiny-llama-tok"};

// One folder per model in this process's fuzzing folder: a link to the model's weights and the config under test.
std::filesystem::path folderFor(std::size_t model) {
  static std::array<std::filesystem::path, kModels.size()> folders;
  if (folders[model].empty()) {
    const auto anchor = eqfuzz::asFile(nullptr, 0, "anchor");
    folders[model] = anchor.parent_path() / kModels[model];
    std::filesystem::create_directories(folders[model]);
    std::filesystem::create_symlink(std::filesystem::path(EQ_TEST_DATA) / "models" / kModels[model] / "model.safetensors",
                                    folders[model] / "model.safetensors");
  }
  return folders[model];
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static eq::ThreadPool pool(1);
  if (size < 1) return 0;
  const std::size_t model = data[0] % kModels.size();
  const auto folder = folderFor(model);
  std::ofstream(folder / "config.json", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data + 1), std::streamsize(size - 1));
  try {
    const auto weights = eq::model::WeightSource::open(folder, pool);
    eq::model::LoadOptions options;
    options.contextLength = 16;
    const auto lm = eq::model::loadCausalLM(*weights, pool, options);
    const std::vector<std::int32_t> ids{1, 2, 3};
    const auto logits = lm->forward(ids);
    eqfuzz::check(logits.size() == 3 * static_cast<std::size_t>(lm->vocabSize()), "3 x vocab logits");
  } catch (const eq::Error&) {
  }
  return 0;
}
