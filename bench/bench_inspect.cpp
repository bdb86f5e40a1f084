// Benchmark: `entquant inspect` on a multi-GB sharded model. Builds a Llama-shaped HF folder whose shards are
// sparse files (real headers, holes for the data), then times, median of N runs each:
//   floor   - open each shard and read its 8-byte length and JSON header bytes (nothing parsed)
//   core    - ModelSource::open + inspectModel + JSON rendering, in process
//   cli     - the whole `entquant inspect --json` process (fork/exec, output to /dev/null)
// Usage: bench_inspect [--preset 8b|70b] [--runs N] [--dir DIR] [--cli PATH]
#include "format/archive.h"
#include "pipeline/inspect.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <vector>

extern char** environ;
namespace fs = std::filesystem;

namespace {

struct Preset {
  const char* name;
  int layers, hidden, inter, heads, kvHeads, vocab, shards;
};
constexpr Preset k8b{"llama-3-8b", 32, 4096, 14336, 32, 8, 128256, 4};
constexpr Preset k70b{"llama-3-70b", 80, 8192, 28672, 64, 8, 128256, 30};

struct T {
  std::string name;
  std::vector<std::int64_t> shape;
};

std::vector<T> llamaTensors(const Preset& p) {
  const int hd = p.hidden / p.heads;
  std::vector<T> t{{"model.embed_tokens.weight", {p.vocab, p.hidden}}};
  for (int l = 0; l < p.layers; ++l) {
    const std::string b = fmt::format("model.layers.{}.", l);
    t.push_back({b + "input_layernorm.weight", {p.hidden}});
    t.push_back({b + "self_attn.q_proj.weight", {p.hidden, p.hidden}});
    t.push_back({b + "self_attn.k_proj.weight", {p.kvHeads * hd, p.hidden}});
    t.push_back({b + "self_attn.v_proj.weight", {p.kvHeads * hd, p.hidden}});
    t.push_back({b + "self_attn.o_proj.weight", {p.hidden, p.hidden}});
    t.push_back({b + "post_attention_layernorm.weight", {p.hidden}});
    t.push_back({b + "mlp.gate_proj.weight", {p.inter, p.hidden}});
    t.push_back({b + "mlp.up_proj.weight", {p.inter, p.hidden}});
    t.push_back({b + "mlp.down_proj.weight", {p.hidden, p.inter}});
  }
  t.push_back({"model.norm.weight", {p.hidden}});
  t.push_back({"lm_head.weight", {p.vocab, p.hidden}});
  return t;
}

std::uint64_t makeModel(const Preset& p, const fs::path& dir) {
  fs::create_directories(dir);
  const auto tensors = llamaTensors(p);
  const std::size_t perShard = (tensors.size() + p.shards - 1) / p.shards;
  nlohmann::ordered_json weightMap;
  std::uint64_t total = 0;
  for (int s = 0; s < p.shards; ++s) {
    const std::string file = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, p.shards);
    nlohmann::ordered_json header;
    header["__metadata__"] = {{"format", "pt"}};
    std::uint64_t off = 0;
    for (std::size_t i = s * perShard; i < std::min(tensors.size(), (s + 1) * perShard); ++i) {
      std::uint64_t n = 2;
      for (auto d : tensors[i].shape) n *= static_cast<std::uint64_t>(d);
      header[tensors[i].name] = {{"dtype", "BF16"}, {"shape", tensors[i].shape}, {"data_offsets", {off, off + n}}};
      weightMap[tensors[i].name] = file;
      off += n;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::ofstream out(dir / file, std::ios::binary);
    const std::uint64_t len = text.size();
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << text;
    out.close();
    fs::resize_file(dir / file, 8 + len + off);  // sparse: the data is a hole
    total += 8 + len + off;
  }
  std::ofstream(dir / "model.safetensors.index.json") << nlohmann::ordered_json{{"metadata", {{"total_size", total}}},
                                                                                 {"weight_map", weightMap}}.dump(2);
  std::ofstream(dir / "config.json") << nlohmann::json{
      {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", p.hidden},
      {"intermediate_size", p.inter}, {"num_hidden_layers", p.layers}, {"num_attention_heads", p.heads},
      {"num_key_value_heads", p.kvHeads}, {"vocab_size", p.vocab}, {"max_position_embeddings", 131072},
      {"rms_norm_eps", 1e-5}, {"rope_theta", 500000.0},
      {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                        {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}}},
      {"bos_token_id", 128000}, {"eos_token_id", {128001, 128008, 128009}}}.dump(2);
  return total;
}

template <typename F>
double medianMs(int runs, F&& f) {
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  Preset preset = k8b;
  int runs = 21;
  fs::path dir;
  std::string cli;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--preset") preset = v == "70b" ? k70b : k8b;
    else if (a == "--runs") runs = std::stoi(v);
    else if (a == "--dir") dir = v;
    else if (a == "--cli") cli = v;
  }
  std::unique_ptr<eq::TempDir> tmp;
  if (dir.empty()) {
    tmp = std::make_unique<eq::TempDir>("eq-bench-inspect");
    dir = tmp->path();
  }
  const std::uint64_t bytes = makeModel(preset, dir / preset.name);
  const fs::path model = dir / preset.name;
  fmt::print("model: {} ({} shards, {:.1f} GB of sparse safetensors)\n", preset.name, preset.shards, bytes / 1e9);

  const double floor = medianMs(runs, [&] {
    for (const auto& e : fs::directory_iterator(model)) {
      if (e.path().extension() != ".safetensors") continue;
      const int fd = ::open(e.path().c_str(), O_RDONLY);
      std::uint64_t n = 0;
      if (::pread(fd, &n, 8, 0) != 8) std::abort();
      std::string buf(n, '\0');
      if (::pread(fd, buf.data(), n, 8) != static_cast<ssize_t>(n)) std::abort();
      ::close(fd);
    }
  });
  std::size_t tensors = 0;
  const double core = medianMs(runs, [&] {
    const auto src = eq::ModelSource::open(model);
    const auto report = eq::inspectModel(*src);
    tensors = report.tensors.size();
    if (eq::toJson(report).dump().empty()) std::abort();
  });
  double cliMs = 0;
  if (!cli.empty()) {
    cliMs = medianMs(runs, [&] {
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
      const std::string m = model.string();
      char* args[] = {cli.data(), const_cast<char*>("inspect"), const_cast<char*>(m.c_str()),
                      const_cast<char*>("--json"), nullptr};
      pid_t pid;
      if (posix_spawn(&pid, cli.c_str(), &fa, nullptr, args, environ) != 0) std::abort();
      int status = 0;
      waitpid(pid, &status, 0);
      posix_spawn_file_actions_destroy(&fa);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::abort();
    });
  }
  fmt::print("tensors: {}\n\n{:<44} {:>10}\n", tensors, "step (median of " + std::to_string(runs) + ")", "ms");
  fmt::print("{:<44} {:>10.2f}\n", "floor: read the raw header bytes", floor);
  fmt::print("{:<44} {:>10.2f}\n", "core: open + validate + inspect + JSON", core);
  if (!cli.empty()) fmt::print("{:<44} {:>10.2f}\n", "cli: entquant inspect --json (whole process)", cliMs);
  return 0;
}
