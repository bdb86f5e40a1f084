// entquant inspect MODEL [--json]
#include "cli/commands.h"
#include "common/units.h"
#include "pipeline/model_session.h"

#include <fmt/format.h>

namespace eq::cli {
namespace {

void printText(const InspectReport& r) {
  fmt::print("Model         {} ({})\n", r.input, sourceKindName(r.kind));
  if (r.config) {
    const ModelConfig& c = *r.config;
    fmt::print("Architecture  {} ({}): {} layers, hidden {}, MLP {}, {} heads / {} KV heads of {}, vocab {}\n",
               c.architecture(), c.modelType, c.numLayers, c.hiddenSize, c.intermediateSize, c.numHeads,
               c.numKvHeads, c.headDim, c.vocabSize);
    fmt::print("RoPE          {} (theta {:g}{}){}\n", c.rope.type, c.rope.theta,
               c.rope.type == "default" ? "" : fmt::format(", factor {:g}", c.rope.factor),
               c.rope.supported() ? "" : "  [not supported for chat]");
    if (c.numExperts > 0) fmt::print("Experts       {} ({} per token)\n", c.numExperts, c.expertsPerToken);
  } else {
    fmt::print("Architecture  unknown (no config.json)\n");
  }
  const double pct = r.parametersTotal ? 100.0 * static_cast<double>(r.parametersCompressible) /
                                             static_cast<double>(r.parametersTotal) : 0.0;
  fmt::print("Parameters    {} total, {} compressible ({:.1f} %), {} kept as they are\n",
             formatCount(r.parametersTotal), formatCount(r.parametersCompressible), pct,
             formatCount(r.parametersTotal - r.parametersCompressible));
  fmt::print("On disk       {} ({} in {} weight file{})\n", formatBytes(r.sizeOnDisk()), formatBytes(r.weightFileBytes),
             r.files.size(), r.files.size() == 1 ? "" : "s");
  fmt::print("Memory        weights {} in bf16, {} as FP8 codes; KV cache {} per token (bf16)\n",
             formatBytes(r.memoryBf16Bytes), formatBytes(r.memoryFp8Bytes), formatBytes(r.kvCacheBytesPerToken));
  std::size_t width = 4;
  for (const auto& t : r.tensors) width = std::max(width, t.name.size());
  fmt::print("\n{:<{}}  {:<16} {:<8} {:<13} {:<5} {:>10}\n", "Tensor", width, "Shape", "Dtype", "Role", "Comp.",
             "Bytes");
  for (const auto& t : r.tensors)
    fmt::print("{:<{}}  {:<16} {:<8} {:<13} {:<5} {:>10}\n", t.name, width, shapeString(t.shape),
               dtypeName(t.dtype), roleName(t.cls.role), t.cls.compressible ? "yes" : "no", formatBytes(t.bytes));
  if (!r.compression.is_null()) {
    // the index's informational members, as the file gives them (a hand-edited file may give other types)
    auto text = [](const nlohmann::json& j, const char* key) {
      return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string("?");
    };
    auto number = [](const nlohmann::json& j, const char* key) {
      return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
    };
    const auto& sum = r.compression["summary"];
    fmt::print("\nCompressed by {}: {} at {:.3f} effective bits per weight ({:.3f} entropy), {} embedded files\n",
               text(r.compression, "tool"), text(r.compression["settings"], "method"), number(sum, "effective_bpw"),
               number(sum, "entropy_bpw"), r.compression["embedded_files"].get<std::size_t>());
  }
  for (const auto& w : r.warnings) fmt::print("warning: {}\n", w);
}

}  // namespace

int runInspect(ArgList& args) {
  const bool json = args.flag("--json");
  const std::string modelPath = args.modelOrDemo();
  const InspectReport report = ModelSession::open(modelPath)->inspect();
  if (json) fmt::print("{}\n", toJson(report).dump(1));
  else printText(report);
  return kExitOk;
}

}  // namespace eq::cli
