// Benchmark: EntQuant quantizer throughput (weights per second per core) on LLM-like synthetic layers of 7B-class
// shapes, in the paper's lambda mode and with --bits rate control, on 1 thread and on all threads, with the
// projection for a 70B model on a 16-core CPU. Usage: bench_quant [--quick] [--objective paper|paper-local|ecsq-l1|
// ecsq-mse|ecsq-rdo] (default paper, the plain exact search) [--distortion: every objective's error at 3.0 and 2.1
// bits instead]
#include "common/thread_pool.h"
#include "quant/tensor_quantizer.h"
#include "synthetic.h"

#include <fmt/format.h>

#include <chrono>
#include <string>

using namespace eq;

// --distortion: the distortion side of the quality study (docs/QUALITY.md) on the same synthetic heavy-tailed
// layers: relative l1 and l2 error of every objective at 3.0 and 2.1 effective bits, all threads.
int distortionTable(bool quick) {
  const std::pair<const char*, std::pair<std::int64_t, std::int64_t>> shapes[] = {
      {"q_proj 4096x4096", {4096, 4096}}, {"down_proj 4096x14336", {4096, quick ? 4096 : 14336}}};
  fmt::print("{:<22} {:<12} {:>5} {:>8} {:>9} {:>9} {:>8}\n", "layer", "objective", "bits", "eff.bpw", "rel l1",
             "rel l2", "seconds");
  ThreadPool pool(0);
  for (const auto& [name, shape] : shapes) {
    const auto w = eqbench::heavyTailedBf16(shape.first, shape.second, 7);
    const quant::MatrixView m{reinterpret_cast<const std::byte*>(w.data()), DType::BF16, shape.first, shape.second};
    for (double bits : {3.0, 2.1})
      for (const char* obj : {"paper", "paper-local", "ecsq-l1", "ecsq-mse", "ecsq-rdo"}) {
        quant::QuantizeOptions o;
        o.target = {quant::RateTarget::Mode::Bits, bits};
        o.objective = *quant::parseObjective(obj);
        quant::QuantizedTensor q;
        const double sec = eqbench::bestSeconds(1, [&] { q = quant::quantizeTensor(m, o, pool); });
        fmt::print("{:<22} {:<12} {:>5.1f} {:>8.3f} {:>9.5f} {:>9.5f} {:>8.2f}\n", name, obj, bits, q.effectiveBits,
                   q.relL1, q.relL2, sec);
      }
  }
  return 0;
}

int main(int argc, char** argv) {
  bool quick = false, distortion = false;
  quant::Objective objective = quant::Objective::Paper;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--distortion") distortion = true;
    else if (a == "--objective" && i + 1 < argc && quant::parseObjective(argv[i + 1]))
      objective = *quant::parseObjective(argv[++i]);
    else return fmt::print(stderr, "usage: bench_quant [--quick] [--objective NAME] [--distortion]\n"), 2;
  }
  if (distortion) return distortionTable(quick);
  fmt::print("objective {}\n", quant::objectiveName(objective));
  struct Shape {
    const char* name;
    std::int64_t rows, cols;
  };
  const Shape shapes[] = {{"q_proj 4096x4096", 4096, 4096}, {"down_proj 4096x14336", 4096, quick ? 4096 : 14336}};
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  fmt::print("{:<22} {:<12} {:>7} {:>9} {:>11} {:>14} {:>9}\n", "layer", "mode", "threads", "seconds", "Mweights/s",
             "Mw/s per core", "eff.bpw");
  double perCoreBits3 = 0;
  for (const auto& s : shapes) {
    const auto w = eqbench::heavyTailedBf16(s.rows, s.cols, 7);
    const quant::MatrixView m{reinterpret_cast<const std::byte*>(w.data()), DType::BF16, s.rows, s.cols};
    struct Mode {
      const char* name;
      quant::RateTarget target;
    };
    const Mode modes[] = {{"lambda 14.5", {quant::RateTarget::Mode::Lambda, 14.5}},
                          {"bits 3.0", {quant::RateTarget::Mode::Bits, 3.0}},
                          {"bits 2.1", {quant::RateTarget::Mode::Bits, 2.1}}};
    for (const auto& mode : modes)
      for (unsigned threads : {1u, hw}) {
        if (threads == hw && hw == 1) continue;
        ThreadPool pool(threads);
        quant::QuantizeOptions o;
        o.target = mode.target;
        o.objective = objective;
        quant::QuantizedTensor q;
        const double sec = eqbench::bestSeconds(1, [&] { q = quant::quantizeTensor(m, o, pool); });
        const double rate = static_cast<double>(m.numel()) / sec / 1e6;
        fmt::print("{:<22} {:<12} {:>7} {:>9.2f} {:>11.2f} {:>14.2f} {:>9.3f}\n", s.name, mode.name, threads, sec, rate,
                   rate / threads, q.effectiveBits);
        if (threads == 1 && std::string(mode.name) == "bits 3.0")
          perCoreBits3 = perCoreBits3 == 0 ? rate : std::min(perCoreBits3, rate);
      }
  }
  {
    // Baseline: the same exact optimum found the plain way, every grid candidate evaluated on every weight by the
    // definition (64 rows of the first layer), against the structured search on the same rows.
    const auto w = eqbench::heavyTailedBf16(64, 4096, 7);
    std::vector<float> row(4096);
    quant::RowScaleSearch search(quant::CodeFormat::Fp8E4M3);
    std::vector<quant::RowPoint> hull;
    const double fast = eqbench::bestSeconds(1, [&] {
      for (int r = 0; r < 64; ++r) {
        for (int j = 0; j < 4096; ++j) row[j] = bf16ToF32(w[r * 4096 + j]);
        search.hull(row.data(), 4096, hull);
      }
    });
    const double brute = eqbench::bestSeconds(1, [&] {
      for (int r = 0; r < 64; ++r) {
        for (int j = 0; j < 4096; ++j) row[j] = bf16ToF32(w[r * 4096 + j]);
        float absmax = 0;
        for (float x : row) absmax = std::max(absmax, std::fabs(x));
        const auto [first, last] = search.range(absmax);
        for (int k = first; k <= last; ++k) quant::RowScaleSearch::evaluate(quant::CodeFormat::Fp8E4M3, row.data(), 4096, k);
      }
    });
    fmt::print("\nrow search, 1 thread, 64 rows x 4096: structured {:.2f} M weights/s, exhaustive by definition "
               "{:.3f} M weights/s ({:.0f}x)\n", 64 * 4096 / fast / 1e6, 64 * 4096 / brute / 1e6, brute / fast);
  }
  fmt::print("\n70B projection ({}) at --bits 3.0 on 16 cores (slowest measured per-core rate, linear scaling): {:.1f} min\n",
             quant::objectiveName(objective), 70e9 / (perCoreBits3 * 1e6 * 16) / 60);
  return 0;
}
