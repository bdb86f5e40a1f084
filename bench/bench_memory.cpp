// Benchmark: peak resident memory of `entquant compress` on a synthetic model many times larger than the tensors in
// flight, and the time it takes. Writes a Llama-shaped folder of LLM-like bf16 weights (LAYERS x 7 matrices of
// hidden x inter), or takes a given model (--model), then runs the CLI once per variant (`default`: `--bits B` alone;
// or OBJECTIVE/ALLOCATION; a `+self` suffix adds `--calibration self`, `+self-original`, `+self-compressed` and `+self-shift` also
// `--calibration-inputs original|compressed|shift`; `+text` (and `+text-original` ...) `--calibration-text FILE`)
// and reads each run's peak RSS from wait4().
// Usage: bench_memory --cli PATH [--model DIR | --layers N --hidden H --inter I] [--bits B]
//                     [--variants default,paper/uniform,default+self,...] [--calibration-text FILE]
#include "format/archive.h"
#include "format/safetensors_writer.h"
#include "synthetic.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

extern char** environ;
using namespace eq;

int main(int argc, char** argv) {
  std::string cli, variants = "default,paper/uniform", given, bits = "3", calibrationText;
  int layers = 8, hidden = 2048, inter = 5632;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--cli") cli = argv[i + 1];
    else if (a == "--variants") variants = argv[i + 1];
    else if (a == "--model") given = argv[i + 1];
    else if (a == "--bits") bits = argv[i + 1];
    else if (a == "--calibration-text") calibrationText = argv[i + 1];
    else if (a == "--layers") layers = std::stoi(argv[i + 1]);
    else if (a == "--hidden") hidden = std::stoi(argv[i + 1]);
    else if (a == "--inter") inter = std::stoi(argv[i + 1]);
  }
  if (cli.empty())
    return fmt::print(stderr, "usage: bench_memory --cli PATH [--model DIR | --layers N --hidden H --inter I] "
                              "[--bits B] [--variants default,OBJECTIVE/ALLOCATION,VARIANT+self|text[-original|-compressed|-shift],...] "
                              "[--calibration-text FILE]\n"), 2;
  TempDir dir("eq-bench-memory");
  std::uint64_t total = 0, largest = 0;
  std::string model = dir.path().string();
  if (!given.empty()) {
    model = given;
    for (const auto& e : std::filesystem::directory_iterator(given))
      if (e.path().extension() == ".safetensors") total += e.file_size(), largest = std::max<std::uint64_t>(largest, e.file_size());
    fmt::print("model: {}, {:.0f} MB of safetensors\n", given, total / 1e6);
  } else {
    std::vector<TensorSpec> specs;
    for (int l = 0; l < layers; ++l) {
      const std::string p = fmt::format("model.layers.{}.", l);
      for (const char* n : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"})
        specs.push_back({p + n + ".weight", DType::BF16, {hidden, hidden}});
      specs.push_back({p + "mlp.gate_proj.weight", DType::BF16, {inter, hidden}});
      specs.push_back({p + "mlp.up_proj.weight", DType::BF16, {inter, hidden}});
      specs.push_back({p + "mlp.down_proj.weight", DType::BF16, {hidden, inter}});
    }
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
    fmt::print("model: {} tensors, {:.0f} MB bf16 (largest tensor {:.0f} MB)\n", specs.size(), total / 1e6, largest / 1e6);
  }
  const std::string out = (dir.path() / "out.eqz").string();
  fmt::print("{:<20} {:>9} {:>13} {:>10} {:>12} {:>9}\n", "variant", "seconds", "peak RSS MiB", "x model", "x largest",
             "eff.bpw");
  // Each variant in turn, in one run: `default` is `entquant compress --bits B` with no other option.
  std::stringstream list(variants);
  for (std::string variant; std::getline(list, variant, ',');) {
    std::vector<std::string> argStrings{cli, "compress", model, "-o", out, "--quiet", "--json", "--bits", bits};
    std::string v = variant;
    for (const char* inputs : {"original", "compressed", "shift"})  // +self-original etc.: --calibration-inputs
      for (const char* kind : {"self", "text"})
        if (v.ends_with(fmt::format("+{}-{}", kind, inputs))) {
          v.resize(v.size() - 2 - std::strlen(kind) - std::strlen(inputs));
          argStrings.insert(argStrings.end(), {"--calibration-inputs", inputs});
          v += fmt::format("+{}", kind);
        }
    if (v.ends_with("+self")) {
      v.resize(v.size() - 5);
      argStrings.insert(argStrings.end(), {"--calibration", "self"});
    } else if (v.ends_with("+text")) {
      if (calibrationText.empty()) return fmt::print(stderr, "variant \"{}\" needs --calibration-text FILE\n", variant), 2;
      v.resize(v.size() - 5);
      argStrings.insert(argStrings.end(), {"--calibration-text", calibrationText});
    }
    if (v != "default") {
      const auto slash = v.find('/');
      if (slash == std::string::npos) return fmt::print(stderr, "variant \"{}\" is not OBJECTIVE/ALLOCATION\n", v), 2;
      for (const std::string& x : {std::string("--objective"), v.substr(0, slash), std::string("--allocation"),
                                   v.substr(slash + 1)})
        argStrings.push_back(x);
    }
    std::vector<char*> args;
    for (auto& x : argStrings) args.push_back(x.data());
    args.push_back(nullptr);
    const std::filesystem::path json = dir.path() / "out.json";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, json.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const auto t0 = std::chrono::steady_clock::now();
    pid_t pid;
    const int spawned = posix_spawn(&pid, cli.c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) return fmt::print(stderr, "cannot run {}\n", cli), 1;
    int status = 0;
    rusage ru{};
    wait4(pid, &status, 0, &ru);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return fmt::print(stderr, "compress ({}) failed\n", variant), 1;
    const double rssMb = static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB
    const auto summary = nlohmann::json::parse(std::ifstream(json));
    fmt::print("{:<20} {:>9.1f} {:>13.0f} {:>10.2f} {:>12.2f} {:>9.3f}\n", variant, sec, rssMb, rssMb * 1048576.0 / total,
               rssMb * 1048576.0 / largest, summary["effective_bpw"].get<double>());
  }
  return 0;
}
