// Benchmark: CPU inference speed of a 1.1B-parameter Llama-shaped model (TinyLlama shapes: 22 layers, hidden 2048,
// MLP 5632, 32 heads / 4 KV heads, vocab 32000; synthetic LLM-like weights) from bf16 safetensors and from an .eqz
// compressed at 3 bits: load time, prefill (64- and 512-token prompts) and decode tokens/s for each kernel
// instruction set, against the memory-bandwidth floor (bytes of weights read per decoded token / measured read
// bandwidth). Prefill and decode are timed --repeat times (default 3) and the medians printed.
// Usage: bench_infer [--layers N] [--threads N] [--isa avx2,avx512bw,avx512,amx] [--repeat N] [--keep DIR] [--logits last|all]
//   --isa   kernels to time, comma-separated (default: avx2 and, where the CPU has them, avx512 and amx)
//   --keep  build the two models in DIR and reuse them in later runs with the same --layers (saves the compression)
//   --logits last (default): a prompt's prefill as generation runs it, with the output layer for its last position
//            only; all: for every position, as perplexity needs
#include "common/thread_pool.h"
#include "format/archive.h"
#include "format/safetensors_writer.h"
#include "model/causal_lm.h"
#include "model/linear.h"
#include "pipeline/compress.h"
#include "synthetic.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#ifdef __AVX2__
#include <immintrin.h>
#endif

using namespace eq;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Read bandwidth: sum a buffer much larger than the caches, on all threads. The buffer starts at a cache line, so
// that no load straddles two (the best case a kernel can reach).
double readBandwidth(ThreadPool& pool) {
  const std::size_t n = std::size_t(1) << 28;  // 1 GiB of floats
  std::vector<float> storage(n + 16, 1.0f);
  float* buf = storage.data() + (64 - reinterpret_cast<std::uintptr_t>(storage.data()) % 64) % 64 / sizeof(float);
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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::vector<KernelIsa> parseIsas(const std::string& list) {
  std::vector<KernelIsa> out;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    bool known = false;
    for (const auto isa : {KernelIsa::Generic, KernelIsa::Avx2, KernelIsa::Avx512Bw, KernelIsa::Avx512, KernelIsa::Amx})
      if (kernelIsaName(isa) == name) {
        known = true;
        if (kernelIsaSupported(isa)) out.push_back(isa);
        else fmt::print(stderr, "skipping {}: this CPU lacks it\n", name);
      }
    if (!known) fmt::print(stderr, "unknown instruction set {} (generic, avx2, avx512bw, avx512, amx)\n", name);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int layers = 22, repeat = 3;
  unsigned threads = 0;
  std::string isaList = "avx2,avx512,amx", keep;
  bool allLogits = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--layers") layers = std::stoi(argv[i + 1]);
    else if (a == "--threads") threads = static_cast<unsigned>(std::stoi(argv[i + 1]));
    else if (a == "--isa") isaList = argv[i + 1];
    else if (a == "--repeat") repeat = std::max(1, std::stoi(argv[i + 1]));
    else if (a == "--keep") keep = argv[i + 1];
    else if (a == "--logits") allLogits = std::string(argv[i + 1]) == "all";
  }
  const auto isas = parseIsas(isaList);
  const int hidden = 2048, inter = 5632, heads = 32, kvHeads = 4, vocab = 32000, hd = hidden / heads;
  ThreadPool pool(threads);
  std::optional<TempDir> temp;
  if (keep.empty()) temp.emplace("eq-bench-infer");
  const std::filesystem::path dir = keep.empty() ? temp->path() : std::filesystem::path(keep);
  bool reuse = false;
  if (!keep.empty() && std::filesystem::exists(dir / "m.eqz") &&
      std::filesystem::exists(dir / "bf16" / "config.json")) {
    std::ifstream in(dir / "bf16" / "config.json");
    reuse = nlohmann::json::parse(in).value("num_hidden_layers", -1) == layers;
  }
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
  for (const auto& s : specs) params += s.bytes() / 2;
  auto t0 = Clock::now();
  if (!reuse) {
    std::filesystem::create_directories(dir / "bf16");
    SafetensorsWriter w(dir / "bf16" / "model.safetensors", specs);
    std::size_t offset = 0;
    for (const auto& s : specs) {
      const std::size_t n = s.bytes() / 2;
      std::vector<std::uint16_t> data(n);
      for (std::size_t i = 0; i < n; ++i) data[i] = s.shape.size() == 1 ? f32ToBf16(1.0f) : block[(offset + i) % block.size()];
      offset += n;
      w.append(std::as_bytes(std::span(data)));
    }
    w.finish();
    std::ofstream(dir / "bf16" / "config.json") << nlohmann::json{
        {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", hidden},
        {"intermediate_size", inter}, {"num_hidden_layers", layers}, {"num_attention_heads", heads},
        {"num_key_value_heads", kvHeads}, {"vocab_size", vocab}, {"max_position_embeddings", 2048},
        {"rms_norm_eps", 1e-5}, {"tie_word_embeddings", false}}.dump();
    t0 = Clock::now();
    const auto src = ModelSource::open(dir / "bf16");
    CompressOptions o;
    o.threads = threads;
    compressModel(*src, dir / "m.eqz", o);
  }
  const std::string compressed = reuse ? "reused from " + dir.string() : fmt::format("in {:.1f} s", seconds(t0));
  const double bw = readBandwidth(pool);
  fmt::print("model: Llama-shaped, {} layers, {:.2f} B parameters; compressed to 3 bits {}; {} threads; "
             "read bandwidth {:.1f} GB/s; medians of {} runs; prefill with logits of {}\n\n", layers, params / 1e9,
             compressed, pool.size(), bw / 1e9, repeat, allLogits ? "every position" : "the last position");
  fmt::print("{:<6} {:<8} {:>7} {:>7} {:>11} {:>12} {:>13} {:>12} {:>9}\n", "weights", "kernels", "load s", "RAM GB",
             "prefill 64", "prefill 512", "decode tok/s", "floor tok/s", "vs floor");
  const auto promptOf = [](int length) {
    std::vector<std::int32_t> p;
    for (int i = 0; i < length; ++i) p.push_back((i * 7919) % 32000);
    return p;
  };
  const std::vector<std::int32_t> prompt = promptOf(64), longPrompt = promptOf(512);
  for (const char* which : {"bf16", "eqz"}) {
    const std::filesystem::path path = std::string(which) == "bf16" ? dir / "bf16" : dir / "m.eqz";
    t0 = Clock::now();
    const auto ws = model::WeightSource::open(path, pool);
    model::LoadOptions lo;
    lo.contextLength = 1024;
    const auto lm = model::loadCausalLM(*ws, pool, lo);
    const double load = seconds(t0);
    // Bytes read per decoded token: every matrix except the embedding table (bf16 in both; one row of it is read).
    const double perToken = static_cast<double>(lm->weightBytes()) - 2.0 * static_cast<double>(vocab) * hidden;
    const double floorTps = bw / perToken;
    const auto logitRows = allLogits ? model::CausalLM::LogitRows::All : model::CausalLM::LogitRows::Last;
    for (const auto isa : isas) {
      setKernelIsa(isa);
      std::vector<double> prefill, prefillLong, decode;
      for (int rep = 0; rep < repeat; ++rep) {
        lm->reset();
        t0 = Clock::now();
        lm->forward(longPrompt, {}, logitRows);
        prefillLong.push_back(static_cast<double>(longPrompt.size()) / seconds(t0));
        lm->reset();
        t0 = Clock::now();
        lm->forward(prompt, {}, logitRows);
        prefill.push_back(static_cast<double>(prompt.size()) / seconds(t0));
        const int steps = 16;
        t0 = Clock::now();
        for (int i = 0; i < steps; ++i) lm->forward(std::vector<std::int32_t>{(i * 31) % vocab});
        decode.push_back(steps / seconds(t0));
      }
      fmt::print("{:<6} {:<8} {:>7.2f} {:>7.2f} {:>11.1f} {:>12.1f} {:>13.2f} {:>12.2f} {:>8.2f}x\n", which,
                 kernelIsaName(isa), load, lm->weightBytes() / 1e9, median(prefill), median(prefillLong),
                 median(decode), floorTps, floorTps / median(decode));
    }
  }
  return 0;
}
