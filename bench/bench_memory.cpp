// Benchmark: peak resident memory of `entquant compress` on a synthetic model many times larger than the tensors in
// flight. Writes a Llama-shaped folder of LLM-like bf16 weights (LAYERS x 7 matrices of hidden x inter), then runs
// the CLI and reads its peak RSS from wait4(). Usage: bench_memory --cli PATH [--layers N] [--hidden H] [--inter I]
#include "format/archive.h"
#include "format/safetensors_writer.h"
#include "synthetic.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <string>

extern char** environ;
using namespace eq;

int main(int argc, char** argv) {
  std::string cli;
  int layers = 8, hidden = 2048, inter = 5632;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--cli") cli = argv[i + 1];
    else if (a == "--layers") layers = std::stoi(argv[i + 1]);
    else if (a == "--hidden") hidden = std::stoi(argv[i + 1]);
    else if (a == "--inter") inter = std::stoi(argv[i + 1]);
  }
  if (cli.empty()) return fmt::print(stderr, "usage: bench_memory --cli PATH [--layers N]\n"), 2;
  TempDir dir("eq-bench-memory");
  std::vector<TensorSpec> specs;
  for (int l = 0; l < layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    for (const char* n : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"})
      specs.push_back({p + n + ".weight", DType::BF16, {hidden, hidden}});
    specs.push_back({p + "mlp.gate_proj.weight", DType::BF16, {inter, hidden}});
    specs.push_back({p + "mlp.up_proj.weight", DType::BF16, {inter, hidden}});
    specs.push_back({p + "mlp.down_proj.weight", DType::BF16, {hidden, inter}});
  }
  std::uint64_t total = 0, largest = 0;
  {
    SafetensorsWriter w(dir.path() / "model.safetensors", specs);
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const auto data = eqbench::heavyTailedBf16(specs[i].shape[0], specs[i].shape[1], static_cast<unsigned>(i));
      w.append(std::as_bytes(std::span(data)));
      total += specs[i].bytes();
      largest = std::max(largest, specs[i].bytes());
    }
    w.finish();
  }
  std::ofstream(dir.path() / "config.json") << nlohmann::json{{"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"}, {"hidden_size", hidden}, {"intermediate_size", inter}, {"num_hidden_layers", layers},
      {"num_attention_heads", 16}, {"vocab_size", 32000}}.dump();
  const std::string model = dir.path().string(), out = (dir.path() / "out.eqz").string();
  char* args[] = {cli.data(), const_cast<char*>("compress"), const_cast<char*>(model.c_str()), const_cast<char*>("-o"),
                  const_cast<char*>(out.c_str()), const_cast<char*>("--quiet"), nullptr};
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid;
  if (posix_spawn(&pid, cli.c_str(), nullptr, nullptr, args, environ) != 0) return 1;
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return fmt::print(stderr, "compress failed\n"), 1;
  const double rssMb = static_cast<double>(ru.ru_maxrss) / 1024.0;
  fmt::print("model: {} tensors, {:.0f} MB bf16 (largest tensor {:.0f} MB)\n", specs.size(), total / 1e6, largest / 1e6);
  fmt::print("entquant compress --bits 3 (default): {:.1f} s, peak RSS {:.0f} MB = {:.2f}x the model, {:.2f}x the "
             "largest tensor\n", sec, rssMb, rssMb * 1e6 / 1048576.0 * 1048576.0 / total, rssMb * 1048576.0 / largest);
  return 0;
}
