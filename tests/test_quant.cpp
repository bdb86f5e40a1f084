// The quantizer: bit-exact codes against PyTorch goldens (ENTQUANT.md section 1), the fast row search against
// the definition for every candidate of the grid, and the hull optimum against brute force for many lambdas.
#include "quant/code_format.h"
#include "quant/row_scale_search.h"
#include "quant/scale_grid.h"
#include "test_util.h"

#include <random>

using namespace eq;
using namespace eq::quant;

namespace {

// LLM-like rows: Student-t(3) weights times a log-normal row scale, rounded to bf16.
std::vector<float> heavyTailedRow(std::size_t n, unsigned seed, double rowScale = 0.02) {
  std::mt19937 rng(seed);
  std::student_t_distribution<double> t(3.0);
  std::vector<float> w(n);
  for (auto& x : w) x = bf16ToF32(f32ToBf16(static_cast<float>(t(rng) * rowScale)));
  return w;
}

double loss(const RowPoint& p, double lambda) { return p.err + lambda * p.rate; }

}  // namespace

class TestQuant : public QObject {
  Q_OBJECT

 private slots:
  void goldenCodes_data() {
    QTest::addColumn<int>("index");
    const auto g = eqtest::readJson(eqtest::dataDir() / "quant/quant_golden.json");
    for (std::size_t i = 0; i < g["cases"].size(); ++i) {
      const auto& c = g["cases"][i];
      QTest::newRow(qPrintable(QString("%1 %2x%3 #%4").arg(eqtest::q(c["format"].get<std::string>()))
                                   .arg(c["rows"].get<int>()).arg(c["cols"].get<int>()).arg(i)))
          << int(i);
    }
  }
  void goldenCodes() {
    QFETCH(int, index);
    const auto c = eqtest::readJson(eqtest::dataDir() / "quant/quant_golden.json")["cases"][index];
    const CodeFormat f = *parseCodeFormat(c["format"].get<std::string>());
    const int rows = c["rows"], cols = c["cols"];
    const auto wBits = c["w_bf16"].get<std::vector<std::uint16_t>>();
    const auto scales = c["scale_bf16"].get<std::vector<std::uint16_t>>();
    const auto codes = c["codes"].get<std::vector<std::uint8_t>>();
    const auto deq = c["dequant_bf16"].get<std::vector<std::uint16_t>>();
    const auto logs = c["log2_scale_f32"].get<std::vector<float>>();
    std::vector<float> w(wBits.size());
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = bf16ToF32(wBits[i]);
    std::vector<std::uint8_t> q(cols);
    std::vector<std::uint16_t> d(cols);
    for (int r = 0; r < rows; ++r) {
      // The reference's scale: bf16(2^bf16(l)).
      QCOMPARE(int(f32ToBf16(std::exp2f(bf16ToF32(f32ToBf16(logs[r]))))), int(scales[r]));
      quantizeRow(f, w.data() + r * cols, cols, scales[r], q.data());
      dequantizeRow(f, q.data(), cols, scales[r], d.data());
      for (int j = 0; j < cols; ++j) {
        QCOMPARE(int(q[j]), int(codes[r * cols + j]));
        QCOMPARE(int(d[j]), int(deq[r * cols + j]));
      }
    }
  }

  void rowQuantizerEqualsTheScalarDefinition_data() {
    QTest::addColumn<QString>("format");
    QTest::newRow("fp8") << "fp8";
    QTest::newRow("int8") << "int8";
  }
  void rowQuantizerEqualsTheScalarDefinition() {
    // quantizeRow has a SIMD path: it must give quantizeOne's code for every weight, including every bf16 value,
    // saturation, subnormals and ties, at many scales.
    QFETCH(QString, format);
    const CodeFormat f = *parseCodeFormat(format.toStdString());
    std::vector<float> w;
    for (std::uint32_t h = 0; h < 65536; ++h) {
      const float v = bf16ToF32(static_cast<std::uint16_t>(h));
      if (std::isfinite(v)) w.push_back(v);
    }
    std::mt19937 rng(2);
    for (int i = 0; i < 100000; ++i) w.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(rng()) & 0xBF7FFFFFu));
    std::vector<std::uint8_t> q(w.size());
    for (int k : {-16 * 20, -16 * 9 + 5, -16 * 3 + 11, 0, 7, 16 * 4 + 3, 16 * 30}) {
      const std::uint16_t s = scaleBitsOfIndex(k);
      quantizeRow(f, w.data(), static_cast<std::int64_t>(w.size()), s, q.data());
      for (std::size_t j = 0; j < w.size(); ++j)
        if (q[j] != quantizeOne(f, w[j], bf16ToF32(s)))
          QFAIL(qPrintable(QString("k=%1 w=%2: %3 vs %4").arg(k).arg(double(w[j]), 0, 'g', 9).arg(q[j])
                               .arg(quantizeOne(f, w[j], bf16ToF32(s)))));
    }
  }

  void negativeZeroBecomesZero() {
    QCOMPARE(int(quantizeOne(CodeFormat::Fp8E4M3, -1e-6f, 1.0f)), 0);
    QCOMPARE(int(quantizeOne(CodeFormat::Fp8E4M3, -0.0f, 1.0f)), 0);
    QCOMPARE(int(quantizeOne(CodeFormat::Int8, -0.4f, 1.0f)), 0);
    QCOMPARE(int(quantizeOne(CodeFormat::Int8, -300.0f, 1.0f)), 0x80);  // -128
    QCOMPARE(int(quantizeOne(CodeFormat::Int8, 300.0f, 1.0f)), 127);
  }

  void scaleGridIsExactOctaves() {
    for (int k = -16 * 100; k < 16 * 100; ++k) {
      QCOMPARE(scaleOfIndex(k + 16), 2.0f * scaleOfIndex(k));
      QCOMPARE(bf16ToF32(scaleBitsOfIndex(k)), scaleOfIndex(k));
    }
    QCOMPARE(scaleOfIndex(0), 1.0f);
    QCOMPARE(scaleOfIndex(-16 * 10), 0x1p-10f);
  }

  void everyCandidateMatchesTheDefinition_data() {
    QTest::addColumn<QString>("format");
    QTest::addColumn<int>("n");
    QTest::addColumn<double>("rowScale");
    QTest::addColumn<bool>("plateau");
    for (const char* f : {"fp8", "int8"})
      for (int n : {1, 7, 64, 300, 2048}) {
        QTest::newRow(qPrintable(QString("%1 n=%2").arg(f).arg(n))) << QString(f) << n << 0.02 << false;
        QTest::newRow(qPrintable(QString("%1 n=%2 large").arg(f).arg(n))) << QString(f) << n << 30.0 << false;
      }
    QTest::newRow("fp8 tiny weights") << "fp8" << 256 << 1e-25 << false;
    // most of the row at the largest magnitude, many of them exactly where a grid scale's codes saturate (448 s,
    // 464 s, 480 s): the lowest octaves code the whole plateau as 448
    QTest::newRow("fp8 plateau") << "fp8" << 600 << 0.02 << true;
    QTest::newRow("int8 plateau") << "int8" << 600 << 0.02 << true;
  }
  void everyCandidateMatchesTheDefinition() {
    QFETCH(QString, format);
    QFETCH(int, n);
    QFETCH(double, rowScale);
    QFETCH(bool, plateau);
    const CodeFormat f = *parseCodeFormat(format.toStdString());
    auto w = heavyTailedRow(n, 100 + n, rowScale);
    if (plateau) {
      const float s = scaleOfIndex(-16 * 12 + 5);
      const float tops[] = {448 * s, 464 * s, 480 * s, 456 * s, 512 * s};
      for (int j = 0; j < n; ++j)
        if (j % 4 != 3) w[j] = bf16ToF32(f32ToBf16((j % 2 ? -1 : 1) * tops[j % 5]));
    }
    RowScaleSearch search(f);
    std::vector<RowPoint> pts;
    search.candidates(w.data(), n, pts);
    float absmax = 0;
    for (float x : w) absmax = std::max(absmax, std::fabs(x));
    const auto [first, last] = search.range(absmax);
    QCOMPARE(pts.size(), std::size_t(last - first + 1));
    for (const auto& p : pts) {
      QVERIFY(p.k >= first && p.k <= last);
      const RowPoint ref = RowScaleSearch::evaluate(f, w.data(), n, p.k);
      if (std::fabs(p.err - ref.err) > 1e-9 * (1 + ref.err) || std::fabs(p.rate - ref.rate) > 1e-9 * (1 + ref.rate))
        QFAIL(qPrintable(QString("k=%1 err %2 vs %3, rate %4 vs %5").arg(p.k).arg(p.err, 0, 'g', 17)
                             .arg(ref.err, 0, 'g', 17).arg(p.rate, 0, 'g', 17).arg(ref.rate, 0, 'g', 17)));
    }
  }

  void hullGivesTheBruteForceOptimum_data() {
    QTest::addColumn<QString>("format");
    QTest::newRow("fp8") << "fp8";
    QTest::newRow("int8") << "int8";
  }
  void hullGivesTheBruteForceOptimum() {
    QFETCH(QString, format);
    const CodeFormat f = *parseCodeFormat(format.toStdString());
    RowScaleSearch search(f);
    std::vector<RowPoint> hull;
    for (unsigned seed = 0; seed < 12; ++seed) {
      const int n = 512 + 97 * seed;
      const auto w = heavyTailedRow(n, seed, 0.01 * (1 + seed));
      search.hull(w.data(), n, hull);
      float absmax = 0;
      for (float x : w) absmax = std::max(absmax, std::fabs(x));
      const auto [first, last] = search.range(absmax);
      std::vector<RowPoint> all;
      for (int k = first; k <= last; ++k) all.push_back(RowScaleSearch::evaluate(f, w.data(), n, k));
      for (double lambda : {0.0, 1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 10.0}) {
        double best = loss(all[0], lambda);
        for (const auto& p : all) best = std::min(best, loss(p, lambda));
        const RowPoint& chosen = hull[chooseOnHull(hull, lambda)];
        QVERIFY2(std::fabs(loss(chosen, lambda) - best) <= 1e-9 * (1 + best),
                 qPrintable(QString("seed %1 lambda %2: hull %3 vs brute force %4").arg(seed).arg(lambda)
                                .arg(loss(chosen, lambda), 0, 'g', 17).arg(best, 0, 'g', 17)));
      }
    }
  }

  void neverWorseThanTheAbsmaxStart() {
    // Rows whose absmax/448 has log2 in [-16, -8): the reference's start 2^bf16(log2(absmax/448)) is on our grid.
    RowScaleSearch search(CodeFormat::Fp8E4M3);
    std::vector<RowPoint> hull;
    for (unsigned seed = 0; seed < 20; ++seed) {
      const auto w = heavyTailedRow(1024, 500 + seed, 0.005 * (1 + seed % 5));
      float absmax = 0;
      for (float x : w) absmax = std::max(absmax, std::fabs(x));
      const float l0 = bf16ToF32(f32ToBf16(std::log2(absmax / 448.0f)));
      QVERIFY(l0 >= -16 && l0 < -8);
      const int k0 = static_cast<int>(std::lround(l0 * 16));
      QCOMPARE(scaleOfIndex(k0), bf16ToF32(f32ToBf16(std::exp2f(l0))));
      const RowPoint start = RowScaleSearch::evaluate(CodeFormat::Fp8E4M3, w.data(), 1024, k0);
      search.hull(w.data(), 1024, hull);
      for (double lambda : {0.0, 0.001, 0.01, 0.1})
        QVERIFY(loss(hull[chooseOnHull(hull, lambda)], lambda) <= loss(start, lambda) * (1 + 1e-12));
    }
  }

  void zeroRow() {
    RowScaleSearch search(CodeFormat::Fp8E4M3);
    std::vector<float> w(100, 0.0f);
    std::vector<RowPoint> hull;
    search.hull(w.data(), 100, hull);
    QCOMPARE(hull.size(), std::size_t(1));
    QCOMPARE(hull[0].err, 0.0);
    QCOMPARE(hull[0].rate, 0.0);
  }
};

QTEST_MAIN(TestQuant)
#include "test_quant.moc"
