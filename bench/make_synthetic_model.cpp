// Writes a synthetic Llama-shaped model folder (config.json, sharded bf16 safetensors with an index) of LLM-like
// weights: heavy-tailed values (Student-t(3) quantiles) times a log-normal scale per row, drawn fast enough for a
// 7B-shaped model (13.5 GB) in about a minute. For benchmarks of the analysis, the plan and the app at real sizes;
// the weights mean nothing (the model can be compressed and analyzed, not chatted with).
//
//   make_synthetic_model OUT_DIR [--layers 32 --hidden 4096 --inter 11008 --heads 32 --kv-heads 32 --vocab 32000]
//                        [--layers-per-shard 4] [--seed 1]
#include "common/numerics.h"
#include "common/thread_pool.h"
#include "format/safetensors_writer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using namespace eq;
namespace fs = std::filesystem;

namespace {

struct Shape {
  int layers = 32, hidden = 4096, inter = 11008, heads = 32, kvHeads = 32, vocab = 32000, perShard = 4;
  unsigned seed = 1;
};

// 65536 Student-t(3) quantiles, so that a 16-bit random number draws one.
std::vector<float> tTable() {
  std::mt19937_64 rng(7);
  std::student_t_distribution<double> t(3.0);
  std::vector<float> v(65536);
  for (auto& x : v) x = static_cast<float>(t(rng));
  return v;
}

void fill(std::vector<std::uint16_t>& out, std::int64_t rows, std::int64_t cols, std::uint64_t seed, double base,
          const std::vector<float>& table, ThreadPool& pool) {
  out.resize(static_cast<std::size_t>(rows * cols));
  pool.parallelFor(static_cast<std::size_t>((rows + 63) / 64), [&](std::size_t b) {
    std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + b * 0xBF58476D1CE4E5B9ull + 1;
    auto next = [&s] {  // xorshift64*
      s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
      return s * 2685821657736338717ull;
    };
    for (std::int64_t r = static_cast<std::int64_t>(b) * 64; r < std::min<std::int64_t>(rows, (b + 1) * 64); ++r) {
      const double u1 = (static_cast<double>(next() >> 11) + 0.5) / 9007199254740992.0;
      const double u2 = (static_cast<double>(next() >> 11) + 0.5) / 9007199254740992.0;
      const double normal = std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
      const float scale = static_cast<float>(base * std::exp(0.5 * normal));
      std::uint16_t* row = out.data() + r * cols;
      for (std::int64_t j = 0; j < cols; j += 4) {
        const std::uint64_t x = next();
        for (int k = 0; k < 4 && j + k < cols; ++k) row[j + k] = f32ToBf16(table[(x >> (16 * k)) & 0xFFFF] * scale);
      }
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return fmt::print(stderr, "usage: make_synthetic_model OUT_DIR [--layers N --hidden H --inter I "
                                          "--heads A --kv-heads K --vocab V --layers-per-shard S --seed S]\n"), 2;
  const fs::path dir = argv[1];
  Shape s;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int v = std::stoi(argv[i + 1]);
    if (a == "--layers") s.layers = v;
    else if (a == "--hidden") s.hidden = v;
    else if (a == "--inter") s.inter = v;
    else if (a == "--heads") s.heads = v;
    else if (a == "--kv-heads") s.kvHeads = v;
    else if (a == "--vocab") s.vocab = v;
    else if (a == "--layers-per-shard") s.perShard = v;
    else if (a == "--seed") s.seed = static_cast<unsigned>(v);
  }
  fs::create_directories(dir);
  const int headDim = s.hidden / s.heads, kv = s.kvHeads * headDim;
  const nlohmann::ordered_json config{
      {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", s.hidden},
      {"intermediate_size", s.inter}, {"num_hidden_layers", s.layers}, {"num_attention_heads", s.heads},
      {"num_key_value_heads", s.kvHeads}, {"head_dim", headDim}, {"vocab_size", s.vocab},
      {"max_position_embeddings", 4096}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"hidden_act", "silu"},
      {"tie_word_embeddings", false}, {"bos_token_id", 1}, {"eos_token_id", 2}, {"torch_dtype", "bfloat16"}};
  std::ofstream(dir / "config.json") << config.dump(2) << "\n";
  const auto table = tTable();
  ThreadPool pool;
  std::vector<std::uint16_t> buf;
  nlohmann::ordered_json weightMap = nlohmann::ordered_json::object();
  const int shards = (s.layers + s.perShard - 1) / s.perShard + 1;  // the last holds embeddings, norm, head
  std::uint64_t seed = s.seed * 1000;
  std::uint64_t total = 0;
  for (int shard = 0; shard < shards; ++shard) {
    const std::string file = fmt::format("model-{:05d}-of-{:05d}.safetensors", shard + 1, shards);
    std::vector<TensorSpec> specs;
    std::vector<std::tuple<std::int64_t, std::int64_t, double>> fills;  // rows, cols, scale (0: ones)
    auto add = [&](const std::string& name, std::int64_t rows, std::int64_t cols, double scale) {
      specs.push_back({name, DType::BF16, cols ? std::vector<std::int64_t>{rows, cols} : std::vector<std::int64_t>{rows}});
      fills.emplace_back(rows, cols, scale);
      weightMap[name] = file;
    };
    if (shard + 1 < shards) {
      for (int l = shard * s.perShard; l < std::min(s.layers, (shard + 1) * s.perShard); ++l) {
        const std::string p = fmt::format("model.layers.{}.", l);
        add(p + "input_layernorm.weight", s.hidden, 0, 0);
        add(p + "mlp.down_proj.weight", s.hidden, s.inter, 0.02);
        add(p + "mlp.gate_proj.weight", s.inter, s.hidden, 0.02);
        add(p + "mlp.up_proj.weight", s.inter, s.hidden, 0.02);
        add(p + "post_attention_layernorm.weight", s.hidden, 0, 0);
        add(p + "self_attn.k_proj.weight", kv, s.hidden, 0.03);
        add(p + "self_attn.o_proj.weight", s.hidden, s.hidden, 0.02);
        add(p + "self_attn.q_proj.weight", s.hidden, s.hidden, 0.03);
        add(p + "self_attn.v_proj.weight", kv, s.hidden, 0.02);
      }
    } else {
      add("lm_head.weight", s.vocab, s.hidden, 0.02);
      add("model.embed_tokens.weight", s.vocab, s.hidden, 0.02);
      add("model.norm.weight", s.hidden, 0, 0);
    }
    SafetensorsWriter w(dir / file, specs, {{"format", "pt"}});
    for (const auto& [rows, cols, scale] : fills) {
      if (scale == 0) {
        buf.assign(static_cast<std::size_t>(rows), f32ToBf16(1.0f));
      } else {
        fill(buf, rows, cols, ++seed, scale, table, pool);
      }
      w.append(std::as_bytes(std::span(buf)));
      total += buf.size() * 2;
    }
    w.finish();
    fmt::print("{} written\n", file);
  }
  std::ofstream(dir / "model.safetensors.index.json")
      << nlohmann::ordered_json{{"metadata", {{"total_size", total}}}, {"weight_map", weightMap}}.dump(1) << "\n";
  fmt::print("{}: {} layers, {:.2f} GB of bf16 weights\n", dir.string(), s.layers, total / 1e9);
  return 0;
}
