// Benchmark: the rANS codec on real EntQuant codes. For synthetic LLM-like layers quantized to 2.1 / 3 / 4 bits,
// reports coded size against the Shannon entropy of the codes (header, table, segment index and states counted),
// and encode / decode throughput on one core (SIMD decoder, the scalar decoder as baseline, memcpy as the floor)
// and on all cores. Usage: bench_codec [--rows R] [--cols C] [--runs N]
#include "codec/rans.h"
#include "common/thread_pool.h"
#include "quant/tensor_quantizer.h"
#include "synthetic.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <string>

using namespace eq;

int main(int argc, char** argv) {
  std::int64_t rows = 4096, cols = 4096;
  int runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--rows") rows = std::stoll(argv[i + 1]);
    else if (a == "--cols") cols = std::stoll(argv[i + 1]);
    else if (a == "--runs") runs = std::stoi(argv[i + 1]);
  }
  ThreadPool all(0), one(1);
  const auto w = eqbench::heavyTailedBf16(rows, cols, 42);
  const quant::MatrixView m{reinterpret_cast<const std::byte*>(w.data()), DType::BF16, rows, cols};
  const double mb = static_cast<double>(rows * cols) / 1e6;  // one byte per symbol

  std::vector<std::uint8_t> scratch(static_cast<std::size_t>(rows * cols));
  const double memcpySec = eqbench::bestSeconds(runs, [&] {
    std::memcpy(scratch.data(), w.data(), scratch.size());
  });
  fmt::print("layer {}x{} ({:.1f} M symbols), {} threads; memcpy of the symbols: {:.0f} MB/s\n\n", rows, cols, mb,
             all.size(), mb / memcpySec);
  fmt::print("{:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10}\n", "target", "entropy", "coded", "overhead",
             "encode", "dec.simd", "dec.scalar", "dec.all", "symbols");
  fmt::print("{:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10}\n", "bpw", "bits/sym", "bits/sym", "%",
             "MB/s", "MB/s", "MB/s", "MB/s", "distinct");
  for (double bits : {2.1, 3.0, 4.0}) {
    quant::QuantizeOptions o;
    o.target = {quant::RateTarget::Mode::Bits, bits};
    const auto q = quant::quantizeTensor(m, o, all);
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(rows * cols));
    codec::ransDecode(q.stream, codes, "bench", &all);
    const auto counts = codec::countSymbols(codes);
    const auto table = codec::FrequencyTable::normalize(counts);
    const std::uint32_t seg = codec::chooseSegmentSymbols(static_cast<std::uint64_t>(cols));
    std::vector<std::byte> stream;
    const double enc = eqbench::bestSeconds(runs, [&] { stream = codec::ransEncode(codes, table, seg, nullptr); });
    const double dec = eqbench::bestSeconds(runs, [&] { codec::ransDecode(stream, scratch, "bench", nullptr); });
    if (scratch != codes) return fmt::print(stderr, "round trip failed\n"), 1;
    const auto info = codec::ransParse(stream, "bench");
    const double decScalar = eqbench::bestSeconds(runs, [&] {
      for (std::uint32_t s = 0; s < info.segments; ++s)
        codec::ransDecodeSegmentScalar(info, stream, s, scratch.data() + std::size_t(s) * info.segmentSymbols, "bench");
    });
    const double decAll = eqbench::bestSeconds(runs, [&] { codec::ransDecode(stream, scratch, "bench", &all); });
    const double h = codec::shannonBits(counts) / static_cast<double>(codes.size());
    const double coded = 8.0 * static_cast<double>(stream.size()) / static_cast<double>(codes.size());
    fmt::print("{:>6.1f} {:>9.4f} {:>9.4f} {:>9.3f} {:>9.0f} {:>10.0f} {:>10.0f} {:>10.0f} {:>10}\n", bits, h, coded,
               100 * (coded / h - 1), mb / enc, mb / dec, mb / decScalar, mb / decAll, table.presentSymbols());
  }
  return 0;
}
