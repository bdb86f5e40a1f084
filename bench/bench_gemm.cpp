// Benchmark: the engine's matrix products alone, on the shapes of a 1.1B Llama-shaped model (TinyLlama: q/o
// 2048x2048, k/v 256x2048, gate/up 5632x2048, down 2048x5632), FP8 codes and bf16 weights, for 1 (decode), 16, 64
// and 512 tokens, with each kernel set: GFLOP/s (2 x rows x cols x tokens per second), best of --runs.
// Usage: bench_gemm [--threads N] [--runs N] [--isa avx2,avx512,amx] [--tokens 1,16,64,512]
#include "common/cpu_isa.h"
#include "common/numerics.h"
#include "common/thread_pool.h"
#include "model/linear.h"
#include "model/linear_kernels.h"

#include <fmt/format.h>

#include <chrono>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "synthetic.h"

using namespace eq;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string x; std::getline(in, x, ',');) out.push_back(x);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned threads = 0;
  int runs = 5;
  std::string isaList = "avx2,avx512,amx", tokenList = "1,16,64,512";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads") threads = static_cast<unsigned>(std::stoi(argv[i + 1]));
    else if (a == "--runs") runs = std::max(1, std::stoi(argv[i + 1]));
    else if (a == "--isa") isaList = argv[i + 1];
    else if (a == "--tokens") tokenList = argv[i + 1];
  }
  ThreadPool pool(threads);
  struct Shape {
    const char* name;
    std::int64_t rows, cols;
  };
  const Shape shapes[] = {{"q/o", 2048, 2048}, {"k/v", 256, 2048}, {"gate/up", 5632, 2048}, {"down", 2048, 5632}};
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  fmt::print("{} threads; GFLOP/s, best of {} runs\n\n", pool.size(), runs);
  fmt::print("{:<8} {:<8} {:<8}", "shape", "weights", "kernels");
  for (const auto& t : split(tokenList)) fmt::print(" {:>9}", "n=" + t);
  fmt::print("\n");
  for (const Shape& s : shapes) {
    model::Linear fp8, bf16;
    fp8.kind = model::Linear::Kind::Codes;
    fp8.format = quant::CodeFormat::Fp8E4M3;
    bf16.kind = model::Linear::Kind::BF16;
    fp8.rows = bf16.rows = s.rows;
    fp8.cols = bf16.cols = s.cols;
    const auto values = eqbench::heavyTailedBf16(s.rows, s.cols, 7);
    bf16.bf16.assign(values.begin(), values.end());
    fp8.codes.resize(bf16.bf16.size());
    for (std::size_t i = 0; i < fp8.codes.size(); ++i) fp8.codes[i] = static_cast<std::uint8_t>(rng() % 0x7F) | (rng() % 2 ? 0x80 : 0);
    fp8.scales.assign(static_cast<std::size_t>(s.rows), 0.01f);
    for (const auto* l : {&fp8, &bf16}) {
      for (const auto& isaName : split(isaList)) {
        KernelIsa isa = KernelIsa::Generic;
        for (const auto i : {KernelIsa::Avx2, KernelIsa::Avx512Bw, KernelIsa::Avx512, KernelIsa::Amx})
          if (kernelIsaName(i) == isaName) isa = i;
        if (!setKernelIsa(isa) || isa == KernelIsa::Generic) continue;
        fmt::print("{:<8} {:<8} {:<8}", s.name, l == &fp8 ? "fp8" : "bf16", isaName);
        for (const auto& tk : split(tokenList)) {
          const std::int64_t n = std::stoll(tk);
          std::vector<float> x(static_cast<std::size_t>(n * s.cols)), y(static_cast<std::size_t>(n * s.rows));
          for (auto& v : x) v = normal(rng);
          const double sec = eqbench::bestSeconds(runs, [&] { l->forward(x.data(), n, y.data(), pool); });
          fmt::print(" {:>9.1f}", 2.0 * static_cast<double>(s.rows * s.cols * n) / sec / 1e9);
        }
        fmt::print("\n");
      }
    }
  }
  return 0;
}
