// rANS codec: exact round trips over many distributions and sizes, SIMD decoder == scalar decoder, coded size
// within 1 % of the Shannon bound for large streams (everything counted), optimal frequency normalization, and
// corrupt streams that must give an error, never a crash.
#include "codec/rans.h"
#include "common/thread_pool.h"
#include "test_util.h"

#include <cmath>
#include <random>

using namespace eq;
using namespace eq::codec;

namespace {

std::vector<std::uint8_t> makeSymbols(const QString& kind, std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> v(n);
  if (kind == "uniform") {
    for (auto& s : v) s = static_cast<std::uint8_t>(rng());
  } else if (kind == "single") {
    std::fill(v.begin(), v.end(), 0x3A);
  } else if (kind == "rare") {
    for (auto& s : v) s = (rng() % 1000 == 0) ? 0xFF : 0x00;
  } else {  // "laplace": like FP8 codes at 2-3 bits: symmetric, peaked at zero, sign in bit 7
    std::geometric_distribution<int> g(0.35);
    for (auto& s : v) {
      const int m = std::min(g(rng), 60);
      s = static_cast<std::uint8_t>(m == 0 ? 0 : (m | ((rng() & 1) << 7)));
    }
  }
  return v;
}

}  // namespace

class TestCodec : public QObject {
  Q_OBJECT
  ThreadPool pool_{2};

 private slots:
  void roundTrip_data() {
    QTest::addColumn<QString>("kind");
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("segment");
    for (const char* k : {"uniform", "laplace", "single", "rare"})
      for (int n : {0, 1, 31, 32, 33, 1000, 65536, 300007})
        for (int seg : {64, 100, 131072}) QTest::newRow(qPrintable(QString("%1 n=%2 seg=%3").arg(k).arg(n).arg(seg)))
                                              << QString(k) << n << seg;
  }
  void roundTrip() {
    QFETCH(QString, kind);
    QFETCH(int, n);
    QFETCH(int, segment);
    const auto sym = makeSymbols(kind, n, static_cast<unsigned>(n + segment));
    const auto table = FrequencyTable::normalize(countSymbols(sym));
    const auto stream = ransEncode(sym, table, static_cast<std::uint32_t>(segment), &pool_);
    std::vector<std::uint8_t> out(n, 0xEE);
    ransDecode(stream, out, "t", &pool_);
    QVERIFY(out == sym);
    const RansStreamInfo info = ransParse(stream, "t");
    QCOMPARE(info.symbols, std::uint64_t(n));
    std::vector<std::uint8_t> a(segment), b(segment);
    for (std::uint32_t s = 0; s < info.segments; ++s) {
      ransDecodeSegment(info, stream, s, a.data(), "t");
      ransDecodeSegmentScalar(info, stream, s, b.data(), "t");
      const std::size_t count = std::min<std::size_t>(segment, n - std::size_t(s) * segment);
      QVERIFY(std::equal(a.begin(), a.begin() + count, b.begin()));
      QVERIFY(std::equal(a.begin(), a.begin() + count, sym.begin() + std::size_t(s) * segment));
    }
  }

  void sizeWithinOnePercentOfEntropy_data() {
    QTest::addColumn<double>("p");
    QTest::newRow("about 2.5 bits") << 0.5;
    QTest::newRow("about 3.3 bits") << 0.35;
    QTest::newRow("about 4.6 bits") << 0.18;
  }
  void sizeWithinOnePercentOfEntropy() {
    QFETCH(double, p);
    std::mt19937 rng(5);
    std::geometric_distribution<int> g(p);
    std::vector<std::uint8_t> sym(1 << 21);  // 2M symbols, a 1024 x 2048 matrix
    for (auto& s : sym) {
      const int m = std::min(g(rng), 100);
      s = static_cast<std::uint8_t>(m == 0 ? 0 : (m | ((rng() & 1) << 7)));
    }
    const auto counts = countSymbols(sym);
    const auto stream = ransEncode(sym, FrequencyTable::normalize(counts), chooseSegmentSymbols(2048), &pool_);
    const double ratio = 8.0 * stream.size() / shannonBits(counts);
    qInfo("entropy %.4f bits/symbol, stream %.4f bits/symbol, overhead %.3f %%", shannonBits(counts) / sym.size(),
          8.0 * stream.size() / sym.size(), 100 * (ratio - 1));
    QVERIFY(ratio < 1.01);
  }

  void normalizationIsOptimal_data() {
    QTest::addColumn<QString>("kind");
    QTest::newRow("laplace") << "laplace";
    QTest::newRow("rare") << "rare";
    QTest::newRow("uniform") << "uniform";
  }
  void normalizationIsOptimal() {
    // The coded size is a separable convex function of integer frequencies with a fixed sum, so a table is optimal
    // exactly when no single unit moved from one symbol to another lowers it.
    QFETCH(QString, kind);
    const auto c = countSymbols(makeSymbols(kind, 200000, 4));
    const auto t = FrequencyTable::normalize(c);
    QCOMPARE(t.cum[256], kProbScale);
    auto cost = [&](int s, double f) { return c[s] * std::log2(double(kProbScale) / f); };
    for (int i = 0; i < 256; ++i)
      for (int j = 0; j < 256; ++j) {
        if (i == j || !c[i] || !c[j] || t.freq[i] <= 1) continue;
        const double delta = cost(i, t.freq[i] - 1) - cost(i, t.freq[i]) + cost(j, t.freq[j] + 1) - cost(j, t.freq[j]);
        QVERIFY2(delta >= -1e-9, qPrintable(QString("moving a unit from %1 to %2 saves %3 bits").arg(i).arg(j).arg(-delta)));
      }
  }

  void everyPresentSymbolKeepsAFrequency() {
    SymbolCounts c{};
    for (int s = 0; s < 256; ++s) c[s] = 1;
    c[0] = 1ull << 40;
    const auto t = FrequencyTable::normalize(c);
    for (int s = 0; s < 256; ++s) QVERIFY(t.freq[s] >= 1);
    QCOMPARE(t.cum[256], kProbScale);
  }

  void corruptStreamsNeverCrash() {
    const auto sym = makeSymbols("laplace", 5000, 9);
    const auto stream = ransEncode(sym, FrequencyTable::normalize(countSymbols(sym)), 1024);
    std::mt19937 rng(3);
    int errors = 0, ok = 0;
    std::vector<std::uint8_t> out(sym.size());
    for (int i = 0; i < 4000; ++i) {
      auto m = stream;
      if (i % 4 == 0) m.resize(rng() % m.size());
      else for (int k = 0; k < 1 + i % 3; ++k) m[rng() % m.size()] ^= static_cast<std::byte>(1 + rng() % 255);
      try {
        ransDecode(m, out, "mutant");
        ++ok;
      } catch (const Error& e) {
        QVERIFY(e.code() == Errc::Corrupt || e.code() == Errc::Unsupported);
        QVERIFY(std::string(e.what()).rfind("mutant: ", 0) == 0);
        ++errors;
      }
    }
    QVERIFY(errors > 3500);  // the integrity check catches nearly every change
  }

  void specificErrors() {
    const auto sym = makeSymbols("laplace", 100, 1);
    auto stream = ransEncode(sym, FrequencyTable::normalize(countSymbols(sym)), 64);
    std::vector<std::uint8_t> out(100);
    EQ_EXPECT_ERROR(ransDecode(std::span(stream).first(10), out, "w"), Errc::Corrupt, "w: rANS stream truncated (10 bytes)");
    auto v = stream;
    v[0] = std::byte{9};
    EQ_EXPECT_ERROR(ransDecode(v, out, "w"), Errc::Unsupported, "w: rANS stream version 9 (this build reads 1)");
    std::vector<std::uint8_t> wrong(99);
    EQ_EXPECT_ERROR(ransDecode(stream, wrong, "w"), Errc::Corrupt, "w: rANS stream holds 100 symbols, expected 99");
    v = stream;
    v[16] = std::byte{7};  // segment count
    EQ_EXPECT_ERROR(ransDecode(v, out, "w"), Errc::Corrupt,
                    "w: rANS stream declares 7 segments for 100 symbols of 64 per segment");
    v = stream;
    v.back() ^= std::byte{0x40};  // last word of the last segment
    EQ_EXPECT_ERROR(ransDecode(v, out, "w"), Errc::Corrupt, "w: rANS segment 1 fails its integrity check");
  }
};

QTEST_MAIN(TestCodec)
#include "test_codec.moc"
