// Benchmark: CPU inference speed of a 1.1B-parameter Llama-shaped model (TinyLlama shapes: 22 layers, hidden 2048,
// MLP 5632, 32 heads / 4 KV heads, vocab 32000; synthetic LLM-like weights) from bf16 safetensors and from an .eqz
// compressed at 3 bits: load time, prefill and decode tokens/s, against the memory-bandwidth floor (bytes of
// weights read per decoded token / measured read bandwidth). Usage: bench_infer [--layers N] [--threads N]
#include "common/thread_pool.h"
#include "format/archive.h"
#include "format/safetensors_writer.h"
#include "model/causal_lm.h"
#include "pipeline/compress.h"
#include "synthetic.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <string>

#ifdef __AVX2__
#include <immintrin.h>
#endif

using namespace eq;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Read bandwidth: sum a buffer much larger than the caches, on all threads.
double readBandwidth(ThreadPool& pool) {
  const std::size_t n = std::size_t(1) << 28;  // 1 GiB of floats
  std::vector<float> buf(n, 1.0f);
  std::vector<double> partial(pool.size());
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    pool.parallelFor(pool.size(), [&](std::size_t t) {
      const std::size_t b = n / pool.size() * t, e = t + 1 == pool.size() ? n : n / pool.size() * (t + 1);
      float s = 0;
#ifdef __AVX2__
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      std::size_t i = b;
      for (; i + 32 <= e; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(&buf[i]));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(&buf[i + 8]));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(&buf[i + 16]));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(&buf[i + 24]));
      }
      float tmp[8];
      _mm256_storeu_ps(tmp, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
      for (float v : tmp) s += v;
      for (; i < e; ++i) s += buf[i];
#else
      for (std::size_t i = b; i < e; ++i) s += buf[i];
#endif
      partial[t] = s;
    });
    best = std::max(best, 4.0 * static_cast<double>(n) / seconds(t0));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int layers = 22;
  unsigned threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--layers") layers = std::stoi(argv[i + 1]);
    else if (a == "--threads") threads = static_cast<unsigned>(std::stoi(argv[i + 1]));
  }
  const int hidden = 2048, inter = 5632, heads = 32, kvHeads = 4, vocab = 32000, hd = hidden / heads;
  ThreadPool pool(threads);
  TempDir dir("eq-bench-infer");
  const auto block = eqbench::heavyTailedBf16(4096, 4096, 3);  // tiled into every tensor
  std::vector<TensorSpec> specs{{"model.embed_tokens.weight", DType::BF16, {vocab, hidden}},
                                {"lm_head.weight", DType::BF16, {vocab, hidden}},
                                {"model.norm.weight", DType::BF16, {hidden}}};
  for (int l = 0; l < layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    specs.push_back({p + "input_layernorm.weight", DType::BF16, {hidden}});
    specs.push_back({p + "post_attention_layernorm.weight", DType::BF16, {hidden}});
    specs.push_back({p + "self_attn.q_proj.weight", DType::BF16, {hidden, hidden}});
    specs.push_back({p + "self_attn.k_proj.weight", DType::BF16, {kvHeads * hd, hidden}});
    specs.push_back({p + "self_attn.v_proj.weight", DType::BF16, {kvHeads * hd, hidden}});
    specs.push_back({p + "self_attn.o_proj.weight", DType::BF16, {hidden, hidden}});
    specs.push_back({p + "mlp.gate_proj.weight", DType::BF16, {inter, hidden}});
    specs.push_back({p + "mlp.up_proj.weight", DType::BF16, {inter, hidden}});
    specs.push_back({p + "mlp.down_proj.weight", DType::BF16, {hidden, inter}});
  }
  std::uint64_t params = 0;
  std::filesystem::create_directories(dir.path() / "bf16");
  {
    SafetensorsWriter w(dir.path() / "bf16" / "model.safetensors", specs);
    std::size_t offset = 0;
    for (const auto& s : specs) {
      const std::size_t n = s.bytes() / 2;
      params += n;
      std::vector<std::uint16_t> data(n);
      for (std::size_t i = 0; i < n; ++i) data[i] = s.shape.size() == 1 ? f32ToBf16(1.0f) : block[(offset + i) % block.size()];
      offset += n;
      w.append(std::as_bytes(std::span(data)));
    }
    w.finish();
  }
  std::ofstream(dir.path() / "bf16" / "config.json") << nlohmann::json{
      {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", hidden},
      {"intermediate_size", inter}, {"num_hidden_layers", layers}, {"num_attention_heads", heads},
      {"num_key_value_heads", kvHeads}, {"vocab_size", vocab}, {"max_position_embeddings", 2048},
      {"rms_norm_eps", 1e-5}, {"tie_word_embeddings", false}}.dump();
  auto t0 = Clock::now();
  {
    const auto src = ModelSource::open(dir.path() / "bf16");
    CompressOptions o;
    o.threads = threads;
    compressModel(*src, dir.path() / "m.eqz", o);
  }
  const double compressSec = seconds(t0);
  const double bw = readBandwidth(pool);
  fmt::print("model: Llama-shaped, {} layers, {:.2f} B parameters; compressed to 3 bits in {:.1f} s; {} threads; "
             "read bandwidth {:.1f} GB/s\n\n", layers, params / 1e9, compressSec, pool.size(), bw / 1e9);
  fmt::print("{:<6} {:>9} {:>10} {:>14} {:>13} {:>14} {:>10}\n", "weights", "load s", "RAM GB", "prefill tok/s",
             "decode tok/s", "floor tok/s", "vs floor");
  const std::vector<std::int32_t> prompt = [] {
    std::vector<std::int32_t> p;
    for (int i = 0; i < 64; ++i) p.push_back((i * 7919) % 32000);
    return p;
  }();
  for (const char* which : {"bf16", "eqz"}) {
    const std::filesystem::path path = std::string(which) == "bf16" ? dir.path() / "bf16" : dir.path() / "m.eqz";
    t0 = Clock::now();
    const auto ws = model::WeightSource::open(path, pool);
    model::LoadOptions lo;
    lo.contextLength = 256;
    const auto lm = model::loadCausalLM(*ws, pool, lo);
    const double load = seconds(t0);
    t0 = Clock::now();
    lm->forward(prompt);
    const double prefill = static_cast<double>(prompt.size()) / seconds(t0);
    const int steps = 16;
    t0 = Clock::now();
    for (int i = 0; i < steps; ++i) lm->forward(std::vector<std::int32_t>{(i * 31) % vocab});
    const double decode = steps / seconds(t0);
    // Bytes read per decoded token: every matrix except the embedding table (one row of it is read).
    const double perToken = static_cast<double>(lm->weightBytes()) -
                            (std::string(which) == "bf16" ? 2.0 : 2.0) * static_cast<double>(vocab) * hidden;
    const double floorTps = bw / perToken;
    fmt::print("{:<6} {:>9.2f} {:>10.2f} {:>14.1f} {:>13.2f} {:>14.2f} {:>9.2f}x\n", which, load,
               lm->weightBytes() / 1e9, prefill, decode, floorTps, floorTps / decode);
  }
  return 0;
}
