// Self-calibration and error feedback (docs/QUALITY.md, "Error feedback"): the feedback sweep against an independent
// reference (the OBS update of GPTQ on an explicit inverse, in double), nearest codes for H = I, a lower output
// error than nearest codes, the factor's errors; the model's own texts (reproducible, every linear input observed,
// shared inputs shared); compress with --calibration self (bits target, record, cancel, errors) and the CLI's
// usage errors; the sensitivity probe of --allocation measured against whole forward passes, and compress with it.
#include "common/numerics.h"
#include "common/thread_pool.h"
#include "format/archive.h"
#include "format/eqz.h"
#include "model/model_source.h"
#include "format/safetensors_writer.h"
#include "model/causal_lm.h"
#include "model/linear.h"
#include "model/weight_source.h"
#include "pipeline/calibrate.h"
#include "pipeline/compress.h"
#include "pipeline/sensitivity.h"
#include "quant/code_format.h"
#include "quant/ecsq.h"
#include "quant/error_feedback.h"
#include "quant/tensor_quantizer.h"
#include "text/tokenizer.h"
#include "test_util.h"

#include <QtTest/QtTest>
#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <numeric>
#include <random>
#include <optional>
#include <fstream>
#include <set>

using namespace eq;
using namespace eq::quant;
namespace fs = std::filesystem;

Q_DECLARE_METATYPE(eq::quant::CodeFormat)

namespace {

const fs::path kTinyLlama = eqtest::dataDir() / "models/tiny-llama";

// Inputs with correlated features: X = Z A, Z standard normal [tokens][k], A random [k][n] (k < n: H is singular
// before damping, as real layers' often are).
std::vector<float> correlatedInputs(std::int64_t tokens, std::int64_t n, std::int64_t k, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> z(0, 1);
  std::vector<float> a(static_cast<std::size_t>(k * n)), x(static_cast<std::size_t>(tokens * n), 0.0f);
  for (auto& v : a) v = z(rng);
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t c = 0; c < k; ++c) {
      const float zc = z(rng);
      for (std::int64_t j = 0; j < n; ++j) x[t * n + j] += zc * a[c * n + j];
    }
  return x;
}

template <class V>
double maxDiff(const V& a, const V& b) {
  double d = a.size() == b.size() ? 0.0 : INFINITY;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
    d = std::max(d, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  return d;
}
template <class V>
double maxAbs(const V& a) {
  double m = 0;
  for (const auto v : a) m = std::max(m, std::fabs(static_cast<double>(v)));
  return m;
}

InputGram gramOf(const std::vector<float>& x, std::int64_t tokens, std::int64_t n) {
  InputGram g(n);
  g.tokens = static_cast<std::uint64_t>(tokens);
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) g.xtx[i * n + j] += static_cast<double>(x[t * n + i]) * x[t * n + j];
  return g;
}

std::vector<float> heavyTailedRow(std::int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<double> t(3.0);
  std::vector<float> w(static_cast<std::size_t>(n));
  for (auto& v : w) v = bf16ToF32(f32ToBf16(static_cast<float>(0.02 * t(rng))));
  return w;
}

// The reference: GPTQ's OBS form on an explicit inverse, in double. Columns in order of decreasing H_ii (stable);
// after column i is coded, the later columns move by -e * Hinv[i][k] / Hinv[i][i] and column i is eliminated from
// Hinv.
std::vector<std::uint8_t> referenceFeedback(CodeFormat f, const std::vector<float>& w, const InputGram& g,
                                            std::uint16_t scale, double damp) {
  const std::int64_t n = g.n;
  std::vector<double> diag(static_cast<std::size_t>(n));
  double mean = 0;
  for (std::int64_t i = 0; i < n; ++i) mean += diag[i] = g.xtx[i * n + i] > 0 ? g.xtx[i * n + i] : 1.0;
  mean /= static_cast<double>(n);
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](auto a, auto b) { return diag[a] > diag[b]; });
  // [H | I] -> [I | H^-1] by Gauss-Jordan with partial pivoting, H in coding order.
  std::vector<double> a(static_cast<std::size_t>(n * 2 * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j)
      a[i * 2 * n + j] = i == j ? diag[perm[i]] + damp * mean : g.xtx[perm[i] * n + perm[j]];
    a[i * 2 * n + n + i] = 1;
  }
  for (std::int64_t c = 0; c < n; ++c) {
    std::int64_t p = c;
    for (std::int64_t r = c + 1; r < n; ++r)
      if (std::fabs(a[r * 2 * n + c]) > std::fabs(a[p * 2 * n + c])) p = r;
    for (std::int64_t j = 0; j < 2 * n; ++j) std::swap(a[c * 2 * n + j], a[p * 2 * n + j]);
    const double d = a[c * 2 * n + c];
    for (std::int64_t j = 0; j < 2 * n; ++j) a[c * 2 * n + j] /= d;
    for (std::int64_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double m = a[r * 2 * n + c];
      for (std::int64_t j = 0; j < 2 * n; ++j) a[r * 2 * n + j] -= m * a[c * 2 * n + j];
    }
  }
  std::vector<double> hinv(static_cast<std::size_t>(n * n));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) hinv[i * n + j] = a[i * 2 * n + n + j];
  std::vector<double> x(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) x[i] = w[perm[i]];
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(n));
  const float s = bf16ToF32(scale);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint8_t q = quantizeOne(f, static_cast<float>(x[i]), s);
    codes[perm[i]] = q;
    const double e = x[i] - bf16ToF32(dequantizeOne(f, q, s));
    const double hii = hinv[i * n + i];
    for (std::int64_t k = i + 1; k < n; ++k) x[k] -= e * hinv[i * n + k] / hii;
    std::vector<double> row(hinv.begin() + i * n, hinv.begin() + (i + 1) * n);
    for (std::int64_t r = i + 1; r < n; ++r)
      for (std::int64_t k = i + 1; k < n; ++k) hinv[r * n + k] -= hinv[r * n + i] * row[k] / hii;
  }
  return codes;
}

// sum over tokens of ((w - w_hat) . x)^2
double outputError(CodeFormat f, const std::vector<float>& w, const std::vector<std::uint8_t>& q, std::uint16_t scale,
                   const std::vector<float>& x, std::int64_t tokens) {
  const auto n = static_cast<std::int64_t>(w.size());
  double total = 0;
  for (std::int64_t t = 0; t < tokens; ++t) {
    double d = 0;
    for (std::int64_t j = 0; j < n; ++j)
      d += (w[j] - bf16ToF32(dequantizeOne(f, q[j], bf16ToF32(scale)))) * static_cast<double>(x[t * n + j]);
    total += d * d;
  }
  return total;
}

std::uint16_t absmaxScale(CodeFormat f, const std::vector<float>& w, float divisor) {
  float m = 0;
  for (float v : w) m = std::max(m, std::fabs(v));
  return f32ToBf16(m / (f == CodeFormat::Fp8E4M3 ? 448.0f : 127.0f) * divisor);
}

// A data column "format" with a row for each code format.
void bothFormats() {
  QTest::addColumn<CodeFormat>("format");
  QTest::newRow("fp8") << CodeFormat::Fp8E4M3;
  QTest::newRow("int8") << CodeFormat::Int8;
}

// A tokenizer.json of 256 ids: every byte falls back to <0xNN>, id = the byte.
nlohmann::json byteTokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = b;
  return {{"version", "1.0"}, {"added_tokens", nlohmann::json::array()},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}, {"byte_fallback", true}}}};
}
}  // namespace

class TestCalibration : public QObject {
  Q_OBJECT
  std::unique_ptr<TempDir> tmp_;

 private slots:
  void init() { tmp_ = std::make_unique<TempDir>("eq-test"); }
  void cleanup() { tmp_.reset(); }

  void feedbackMatchesTheObsReference_data() {
    QTest::addColumn<CodeFormat>("format");
    QTest::addColumn<int>("n");
    QTest::addColumn<float>("divisor");  // scale = absmax / max code * divisor: larger is coarser
    QTest::newRow("fp8 n=24 fine") << CodeFormat::Fp8E4M3 << 24 << 1.0f;
    QTest::newRow("fp8 n=24 coarse") << CodeFormat::Fp8E4M3 << 24 << 64.0f;
    QTest::newRow("fp8 n=48 coarse") << CodeFormat::Fp8E4M3 << 48 << 256.0f;
    QTest::newRow("int8 n=32 coarse") << CodeFormat::Int8 << 32 << 16.0f;
  }
  void feedbackMatchesTheObsReference() {
    QFETCH(CodeFormat, format);
    QFETCH(int, n);
    QFETCH(float, divisor);
    const auto x = correlatedInputs(200, n, n / 2, 7);
    const InputGram g = gramOf(x, 200, n);
    const ErrorFeedback ef = ErrorFeedback::factor(g, 0.01);
    QCOMPARE(ef.size(), std::int64_t(n));
    int differ = 0, total = 0;
    for (unsigned row = 0; row < 16; ++row) {
      const auto w = heavyTailedRow(n, 100 + row);
      const std::uint16_t s = absmaxScale(format, w, divisor);
      std::vector<std::uint8_t> q(static_cast<std::size_t>(n));
      std::vector<float> scratch(static_cast<std::size_t>(n));
      ef.quantizeRow(format, w.data(), s, q.data(), scratch.data());
      const auto ref = referenceFeedback(format, w, g, s, 0.01);
      for (int j = 0; j < n; ++j) differ += q[j] != ref[j];
      total += n;
      // Float against double may part at a rounding boundary; the output error must agree regardless.
      const double e = outputError(format, w, q, s, x, 200), er = outputError(format, w, ref, s, x, 200);
      QVERIFY2(std::fabs(e - er) <= 0.02 * er + 1e-12, qPrintable(QString("%1 vs %2").arg(e).arg(er)));
    }
    QVERIFY2(differ * 100 <= total, qPrintable(QString("%1 of %2 codes differ").arg(differ).arg(total)));
  }

  void rowsTogetherEqualRowByRow() {
    const std::int64_t n = 40, rows = 7;
    const auto x = correlatedInputs(120, n, 30, 9);
    const ErrorFeedback ef = ErrorFeedback::factor(gramOf(x, 120, n));
    std::vector<float> w;
    std::vector<std::uint16_t> scales;
    for (unsigned r = 0; r < rows; ++r) {
      const auto row = heavyTailedRow(n, 50 + r);
      w.insert(w.end(), row.begin(), row.end());
      scales.push_back(absmaxScale(CodeFormat::Fp8E4M3, row, 8.0f * static_cast<float>(r + 1)));
    }
    std::vector<std::uint8_t> together(rows * n), single(rows * n);
    std::vector<float> scratch(rows * n);
    ef.quantizeRows(CodeFormat::Fp8E4M3, w.data(), rows, scales.data(), together.data(), scratch.data());
    for (std::int64_t r = 0; r < rows; ++r)
      ef.quantizeRow(CodeFormat::Fp8E4M3, w.data() + r * n, scales[r], single.data() + r * n, scratch.data());
    QCOMPARE(together, single);
  }

  void identityGivesNearestCodes_data() {
    bothFormats();
  }
  void identityGivesNearestCodes() {
    QFETCH(CodeFormat, format);
    const std::int64_t n = 64;
    InputGram g(n);
    for (std::int64_t i = 0; i < n; ++i) g.xtx[i * n + i] = 3.0;
    const ErrorFeedback ef = ErrorFeedback::factor(g);
    for (float divisor : {1.0f, 32.0f, 512.0f}) {
      const auto w = heavyTailedRow(n, 5);
      const std::uint16_t s = absmaxScale(format, w, divisor);
      std::vector<std::uint8_t> q(n), nearest(n);
      std::vector<float> scratch(n);
      ef.quantizeRow(format, w.data(), s, q.data(), scratch.data());
      quantizeRow(format, w.data(), n, s, nearest.data());
      QCOMPARE(q, nearest);
    }
  }

  // The rate-aware sweep: for H = c I it is rdoQuantizeRow's rule exactly (no feedback, the same weights of error
  // and bits); mu = 0 gives the plain sweep; on correlated inputs it trades output error for fewer bits.
  void rateAwareFeedback_data() {
    bothFormats();
  }
  void rateAwareFeedback() {
    QFETCH(CodeFormat, format);
    const std::int64_t n = 96;
    // code lengths of a peaked histogram: small magnitudes cheap
    std::array<double, 256> len{};
    for (int c = 0; c < 256; ++c) {
      const float v = std::fabs(bf16ToF32(dequantizeOne(format, static_cast<std::uint8_t>(c), 1.0f)));
      len[c] = 1.0 + 2.0 * std::log2(1.0 + v);
    }
    InputGram diag(n);
    for (std::int64_t i = 0; i < n; ++i) diag.xtx[i * n + i] = 4.0;
    const ErrorFeedback id = ErrorFeedback::factor(diag, 0.0);  // U = I / 2 exactly: no rounding to break ties
    const std::int64_t tokens = 400;
    const auto x = correlatedInputs(tokens, n, 64, 3);
    const ErrorFeedback ef = ErrorFeedback::factor(gramOf(x, tokens, n));
    double bitsPlain = 0, bitsRdo = 0, errPlain = 0, errRdo = 0;
    int changed = 0;
    for (unsigned row = 0; row < 16; ++row) {
      const auto w = heavyTailedRow(n, 700 + row);
      const std::uint16_t s = absmaxScale(format, w, 64.0f);
      const double mu = 0.5 * bf16ToF32(s) * bf16ToF32(s);  // half a squared step per bit
      std::vector<std::uint8_t> q(n), ref(n), plain(n), zero(n);
      std::vector<float> scratch(n);
      codec::SymbolCounts counts{};
      id.quantizeRowsRdo(format, w.data(), 1, &s, len.data(), mu, q.data(), scratch.data());
      rdoQuantizeRow(format, w.data(), n, s, len, mu, ref.data(), counts);
      QCOMPARE(q, ref);
      ef.quantizeRow(format, w.data(), s, plain.data(), scratch.data());
      ef.quantizeRowsRdo(format, w.data(), 1, &s, len.data(), 0.0, zero.data(), scratch.data());
      QCOMPARE(zero, plain);
      ef.quantizeRowsRdo(format, w.data(), 1, &s, len.data(), mu, q.data(), scratch.data());
      changed += q != plain;
      for (std::int64_t j = 0; j < n; ++j) {
        bitsPlain += len[plain[j]];
        bitsRdo += len[q[j]];
      }
      errPlain += outputError(format, w, plain, s, x, tokens);
      errRdo += outputError(format, w, q, s, x, tokens);
    }
    QVERIFY(changed > 0);
    QVERIFY2(bitsRdo < bitsPlain, qPrintable(QString("%1 vs %2 bits").arg(bitsRdo).arg(bitsPlain)));
    QVERIFY2(errRdo > errPlain, qPrintable(QString("%1 vs %2").arg(errRdo).arg(errPlain)));
  }

  void feedbackLowersOutputError() {
    const std::int64_t n = 96, tokens = 400;
    const auto x = correlatedInputs(tokens, n, 64, 3);
    const ErrorFeedback ef = ErrorFeedback::factor(gramOf(x, tokens, n));
    double fb = 0, nearest = 0;
    for (unsigned row = 0; row < 32; ++row) {
      const auto w = heavyTailedRow(n, 300 + row);
      const std::uint16_t s = absmaxScale(CodeFormat::Fp8E4M3, w, 128.0f);  // about 2-3 bits of entropy
      std::vector<std::uint8_t> q(n), qn(n);
      std::vector<float> scratch(n);
      ef.quantizeRow(CodeFormat::Fp8E4M3, w.data(), s, q.data(), scratch.data());
      quantizeRow(CodeFormat::Fp8E4M3, w.data(), n, s, qn.data());
      fb += outputError(CodeFormat::Fp8E4M3, w, q, s, x, tokens);
      nearest += outputError(CodeFormat::Fp8E4M3, w, qn, s, x, tokens);
    }
    QVERIFY2(fb < 0.7 * nearest, qPrintable(QString("feedback %1, nearest %2").arg(fb).arg(nearest)));
  }

  void gramIsXtX_data() {
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("tokens");
    QTest::newRow("1 x 1") << 1 << 1;
    QTest::newRow("37 features, 29 tokens") << 37 << 29;  // edges of every block shape
    QTest::newRow("64 features, 200 tokens") << 64 << 200;
    QTest::newRow("131 features, 50 tokens") << 131 << 50;
  }
  void gramIsXtX() {
    QFETCH(int, n);
    QFETCH(int, tokens);
    const auto x = correlatedInputs(tokens, n, std::max(1, n / 2), 11);
    const InputGram want = gramOf(x, tokens, n);
    ThreadPool pool(2);
    InputGram g(n);
    g.add(x.data(), tokens / 2, &pool);  // in two calls, the second without a pool
    g.add(x.data() + (tokens / 2) * n, tokens - tokens / 2);
    QCOMPARE(g.tokens, std::uint64_t(tokens));
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        const double w = want.xtx[i * n + j], got = g.xtx[i * n + j];
        // float sums: within 1e-5 of the Cauchy-Schwarz bound sqrt(G_ii G_jj)
        const double bound = std::sqrt(want.xtx[i * n + i] * want.xtx[j * n + j]);
        QVERIFY2(std::fabs(got - w) <= 1e-5 * bound + 1e-12, qPrintable(QString("[%1][%2] %3 vs %4").arg(i).arg(j).arg(got).arg(w)));
        QCOMPARE(g.xtx[i * n + j], g.xtx[j * n + i]);
      }
    // The shift statistics sum (x0 - x) x^T; and every kernel width gives the same sums, bit for bit.
    const auto x0 = correlatedInputs(tokens, n, std::max(1, n / 2), 12);
    InputGram s(n);
    s.addShift(x0.data(), x.data(), tokens, &pool);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        double w = 0;
        for (int t = 0; t < tokens; ++t)
          w += (static_cast<double>(x0[t * n + i]) - x[t * n + i]) * static_cast<double>(x[t * n + j]);
        QVERIFY2(std::fabs(s.shift[i * n + j] - w) <= 1e-5 * maxAbs(s.shift) + 1e-12, qPrintable(QString("[%1][%2]").arg(i).arg(j)));
      }
    QCOMPARE(s.xtx, [&] {
      InputGram t(n);
      t.add(x.data(), tokens, &pool);
      return t.xtx;
    }());
    const KernelIsa before = kernelIsa();
    for (auto isa : {KernelIsa::Generic, KernelIsa::Avx2, KernelIsa::Avx512Bw, KernelIsa::Avx512, KernelIsa::Amx}) {
      if (!setKernelIsa(isa)) continue;
      InputGram g2(n), s2(n);
      g2.add(x.data(), tokens / 2, &pool);
      g2.add(x.data() + (tokens / 2) * n, tokens - tokens / 2);
      s2.addShift(x0.data(), x.data(), tokens, &pool);
      QVERIFY2(g2.xtx == g.xtx && s2.shift == s.shift, kernelIsaName(isa).data());
    }
    setKernelIsa(before);
  }

  void factorErrors() {
    InputGram empty;
    EQ_EXPECT_ERROR(ErrorFeedback::factor(empty), Errc::InvalidArgument, "input statistics of size 0 hold 0 values");
    InputGram bad;
    bad.n = 2;
    bad.xtx = {1.0, 0.0, 0.0, std::nan("")};
    EQ_EXPECT_ERROR(ErrorFeedback::factor(bad), Errc::InvalidArgument, "input statistics are not finite");
    InputGram singular(2);  // rank 1: no damping fails, so the factor retries with some
    singular.xtx = {1.0, 1.0, 1.0, 1.0};
    QCOMPARE(ErrorFeedback::factor(singular, 0.0).size(), std::int64_t(2));
    EQ_EXPECT_ERROR(ErrorFeedback::factor(singular, -1.0), Errc::InvalidArgument,
                    "damping must be finite and not negative");
    InputGram zero(3);  // never saw an input: every H_ii becomes 1
    QCOMPARE(ErrorFeedback::factor(zero).size(), std::int64_t(3));
  }

  void wrongSizeIsRejected() {
    const InputGram g(4);
    const ErrorFeedback ef = ErrorFeedback::factor(g);
    std::vector<float> w(3 * 8, 0.01f);
    const auto m = MatrixView::of(std::as_bytes(std::span(w)), DType::F32, {3, 8});
    QuantizeOptions o;
    o.errorFeedback = &ef;
    ThreadPool pool(1);
    EQ_EXPECT_ERROR(quantizeTensor(m, o, pool), Errc::ShapeMismatch, "input statistics for 4 columns, the matrix has 8");
  }

  void selfTextsObserveEveryLinear() {
    const auto src = ModelSource::open(kTinyLlama);
    ThreadPool pool(2);
    CalibrationOptions o;
    o.sequences = 3;
    o.length = 10;
    std::int64_t last = 0, total = 0;
    o.progress = [&](const Progress& p) {
      QCOMPARE(p.phase, Phase::Calibrate);
      if (p.unit != Unit::Tokens) return;  // the passes over the blocks
      const auto done = static_cast<std::int64_t>(p.done);
      QVERIFY2(done >= last, qPrintable(QString("%1 after %2").arg(done).arg(last)));
      last = done;
      total = static_cast<std::int64_t>(p.total);
    };
    const Calibration c = calibrateSelf(*src, pool, o);
    QCOMPARE(total, std::int64_t(30));  // tokens written
    QCOMPARE(last, total);
    QCOMPARE(c.texts.size(), std::size_t(3));
    for (const auto& t : c.texts) {
      QCOMPARE(t.size(), std::size_t(10));
      QCOMPARE(t.front(), 1);  // the config's BOS
    }
    QVERIFY(c.texts[0] != c.texts[1]);  // each text its own seed
    for (int l = 0; l < 2; ++l) {
      const std::string p = fmt::format("model.layers.{}.", l);
      for (const char* w : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
        QVERIFY2(c.grams.count(p + w + ".weight"), w);
      const auto& q = c.grams.at(p + "self_attn.q_proj.weight");
      QCOMPARE(q.get(), c.grams.at(p + "self_attn.k_proj.weight").get());
      QCOMPARE(q.get(), c.grams.at(p + "self_attn.v_proj.weight").get());
      QVERIFY(q.get() != c.grams.at(p + "self_attn.o_proj.weight").get());
      QCOMPARE(c.grams.at(p + "mlp.gate_proj.weight").get(), c.grams.at(p + "mlp.up_proj.weight").get());
      QCOMPARE(q->n, std::int64_t(64));
      QCOMPARE(c.grams.at(p + "mlp.down_proj.weight")->n, std::int64_t(128));
      for (const auto& [name, g] : c.grams) {
        QCOMPARE(g->tokens, std::uint64_t(30));
        for (std::int64_t i = 0; i < g->n; ++i) {
          QVERIFY(g->xtx[i * g->n + i] >= 0);
          for (std::int64_t j = 0; j < i; ++j) QCOMPARE(g->xtx[i * g->n + j], g->xtx[j * g->n + i]);
        }
      }
    }
    QCOMPARE(c.bytes, std::uint64_t(2 * 8 * (64 * 64 * 3 + 128 * 128)));  // as the up-front estimate says
    // The same seed writes the same texts, on one thread or several.
    ThreadPool one(1);
    o.progress = {};
    const Calibration again = calibrateSelf(*src, one, o);
    QCOMPARE(again.texts, c.texts);
  }

  void calibrationErrors() {
    const auto src = ModelSource::open(kTinyLlama);
    ThreadPool pool(1);
    CalibrationOptions o;
    o.sequences = 2;
    o.length = 8;
    o.maxBytes = 100000;
    int calls = 0;
    o.keepGoing = [&] { return ++calls > 0; };  // counts how far it got
    // One block's statistics (8 x (3 x 64^2 + 128^2) bytes) and the texts' hidden states (4 x 2 x 8 x 64 bytes).
    EQ_EXPECT_ERROR(calibrateSelf(*src, pool, o), Errc::InvalidArgument,
                    kTinyLlama.string() + ": calibration statistics would need 228.0 KiB of memory, more than the "
                                          "budget of 97.7 KiB; compress without calibration or with fewer "
                                          "calibration texts");
    QCOMPARE(calls, 0);  // refused before the model wrote a token
    o.keepGoing = {};
    o.maxBytes = 0;
    o.length = 1000;
    EQ_EXPECT_ERROR(calibrateSelf(*src, pool, o), Errc::InvalidArgument,
                    kTinyLlama.string() + ": calibration texts of 1000 tokens exceed the model's context of 256");
    o.length = 8;
    for (int after : {5, 8, 10, 13}) {  // while writing (7 checks: one per step of both texts), embedding the texts,
                                         // running blocks 0 and 1
      std::atomic<int> n{0};
      o.keepGoing = [&] { return ++n < after; };
      EQ_EXPECT_ERROR(calibrateSelf(*src, pool, o), Errc::Cancelled, "calibration cancelled");
    }
  }

  void compressWithCalibration() {
    const auto src = ModelSource::open(kTinyLlama);
    CompressOptions o;
    o.target = {RateTarget::Mode::Bits, 4.0};
    o.allocation = CompressOptions::Allocation::Uniform;
    o.calibration = CompressOptions::Calibration::Self;
    o.calibrationOptions.sequences = 2;
    o.calibrationOptions.length = 16;
    std::vector<std::string> phases;
    std::set<std::string> details;  // the block passes, reported while the tensor that needs them waits
    o.progress = [&](const Progress& p) {
      if (phases.empty() || phases.back() != phaseName(p.phase)) phases.push_back(std::string(phaseName(p.phase)));
      if (p.pass.block >= 0)
        details.insert(fmt::format("{} (calibration: block {} pass {}, {}/{} texts)", p.item, p.pass.block,
                                   p.pass.pass, p.pass.textsDone, p.pass.texts));
    };
    const fs::path out = tmp_->path() / "c.eqz";
    const CompressSummary s = compressModel(*src, out, o);
    QCOMPARE(phases, (std::vector<std::string>{"calibrate", "compress"}));
    // Shift inputs: q/k/v's statistics (pass 1), o's after q/k/v were replaced (2), gate/up's (3), down's (4),
    // then the move to block 1, each over both texts.
    const std::string b0 = "model.layers.0.", b1 = "model.layers.1.";
    for (const std::string& d : {b0 + "self_attn.k_proj.weight (calibration: block 0 pass 1, 2/2 texts)",
                                b0 + "self_attn.o_proj.weight (calibration: block 0 pass 2, 1/2 texts)",
                                b0 + "mlp.gate_proj.weight (calibration: block 0 pass 3, 2/2 texts)",
                                b0 + "mlp.down_proj.weight (calibration: block 0 pass 4, 2/2 texts)",
                                b1 + "self_attn.k_proj.weight (calibration: block 0 pass 5, 2/2 texts)",
                                b1 + "self_attn.k_proj.weight (calibration: block 1 pass 1, 2/2 texts)"})
      QVERIFY2(details.count(d), d.c_str());
    QCOMPARE(details.size(), std::size_t(2 * 9));
    QCOMPARE(toJson(s)["calibration"].get<std::string>(), std::string("self"));
    QCOMPARE(toJson(s)["calibration_inputs"].get<std::string>(), std::string("shift"));  // auto: the model is small
    QCOMPARE(s.calibrationTokens, std::uint64_t(32));
    const auto j = toJson(s);
    QCOMPARE(j["calibration"].get<std::string>(), std::string("self"));
    QCOMPARE(j["calibration_tokens"].get<int>(), 32);
    const EqzFile f = EqzFile::open(out);
    QCOMPARE(f.index()["settings"]["calibration"].get<std::string>(), std::string("self"));
    QCOMPARE(f.index()["settings"]["calibration_inputs"].get<std::string>(), std::string("shift"));
    QCOMPARE(j["calibration_inputs"].get<std::string>(), std::string("shift"));
    // The codes differ from the nearest ones at the same settings, and every tensor still lands on its target.
    CompressOptions plain = o;
    plain.calibration = CompressOptions::Calibration::None;
    const CompressSummary p = compressModel(*src, tmp_->path() / "p.eqz", plain);
    QCOMPARE(toJson(p)["calibration"].get<std::string>(), std::string("none"));
    bool anyDiffers = false;
    for (std::size_t i = 0; i < s.tensors.size(); ++i) {
      if (s.tensors[i].encoding != Encoding::EntQuant) continue;
      QVERIFY2(std::fabs(s.tensors[i].effectiveBits - 4.0) <= 0.03 || s.tensors[i].targetClamped, s.tensors[i].name.c_str());
      anyDiffers |= s.tensors[i].relL2 != p.tensors[i].relL2;
    }
    QVERIFY(anyDiffers);
    // The compressed model's inputs without the shift: other codes, same targets.
    CompressOptions orig = o;
    orig.calibrationOptions.inputs = CalibrationOptions::Inputs::Compressed;
    const CompressSummary r = compressModel(*src, tmp_->path() / "o.eqz", orig);
    bool inputsMatter = false;
    for (std::size_t i = 0; i < s.tensors.size(); ++i) {
      QCOMPARE(r.tensors[i].name, s.tensors[i].name);  // the report keeps the checkpoint's order
      if (s.tensors[i].encoding != Encoding::EntQuant) continue;
      QVERIFY2(std::fabs(r.tensors[i].effectiveBits - 4.0) <= 0.03 || r.tensors[i].targetClamped, r.tensors[i].name.c_str());
      inputsMatter |= s.tensors[i].relL2 != r.tensors[i].relL2;
    }
    QVERIFY(inputsMatter);
    CompressOptions sh = o;
    sh.calibrationOptions.inputs = CalibrationOptions::Inputs::Original;
    const CompressSummary b = compressModel(*src, tmp_->path() / "s.eqz", sh);
    QCOMPARE(toJson(b)["calibration_inputs"].get<std::string>(), std::string("original"));
    for (const auto& t : b.tensors)
      if (t.encoding == Encoding::EntQuant)
        QVERIFY2(std::fabs(t.effectiveBits - 4.0) <= 0.03 || t.targetClamped, t.name.c_str());
    QCOMPARE(EqzFile::open(tmp_->path() / "o.eqz").tensors().size(), f.tensors().size());
    for (std::size_t i = 0; i < f.tensors().size(); ++i)
      QCOMPARE(f.tensors()[i].name, s.tensors[i].name);
  }

  // addShift sums (x0 - x) x^T beside x x^T; compensateInputShift gives the least-squares weights for the shifted
  // inputs (the normal equations hold without damping), and leaves the weights exactly alone for unshifted ones.
  void inputShiftCompensation_data() {
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("tokens");
    QTest::newRow("6 x 40") << 6 << 40;
    QTest::newRow("37 x 120") << 37 << 120;
  }
  void inputShiftCompensation() {
    QFETCH(int, n);
    QFETCH(int, tokens);
    const std::vector<float> x = correlatedInputs(tokens, n, n, 7);
    std::vector<float> x0 = x;
    std::mt19937 rng(11);
    std::normal_distribution<float> z(0, 0.3f);
    for (auto& v : x0) v += z(rng);
    ThreadPool pool(2);
    InputGram g(n);
    g.addShift(x0.data(), x.data(), tokens / 2, &pool);  // in two parts, as texts arrive
    g.addShift(x0.data() + (tokens / 2) * n, x.data() + (tokens / 2) * n, tokens - tokens / 2, &pool);
    const InputGram h = gramOf(x, tokens, n);
    QCOMPARE(g.tokens, std::uint64_t(tokens));
    QVERIFY(maxDiff(g.xtx, h.xtx) <= 1e-5 * maxAbs(h.xtx));
    std::vector<double> d(static_cast<std::size_t>(n * n), 0.0);
    for (int t = 0; t < tokens; ++t)
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
          d[i * n + j] += (static_cast<double>(x0[t * n + i]) - x[t * n + i]) * x[t * n + j];
    QVERIFY(maxDiff(g.shift, d) <= 1e-5 * maxAbs(d));
    const int rows = 3;
    std::vector<float> w(static_cast<std::size_t>(rows * n));
    for (auto& v : w) v = z(rng);
    std::vector<float> ws = w;
    compensateInputShift(g, ws.data(), rows, 0.0, &pool);
    // sum_t (W x0_t - W' x_t) x_t^T = 0
    for (int r = 0; r < rows; ++r) {
      std::vector<double> grad(static_cast<std::size_t>(n), 0.0);
      double scale = 0;
      for (int t = 0; t < tokens; ++t) {
        double e = 0;
        for (int k = 0; k < n; ++k) e += static_cast<double>(w[r * n + k]) * x0[t * n + k] - static_cast<double>(ws[r * n + k]) * x[t * n + k];
        for (int j = 0; j < n; ++j) {
          grad[j] += e * x[t * n + j];
          scale += std::fabs(static_cast<double>(w[r * n + j]) * x0[t * n + j] * x[t * n + j]);
        }
      }
      QVERIFY2(maxAbs(grad) <= 1e-4 * scale, qPrintable(QString("row %1: %2 of %3").arg(r).arg(maxAbs(grad)).arg(scale)));
    }
    InputGram same(n);
    same.addShift(x.data(), x.data(), tokens, &pool);
    std::vector<float> unchanged = w;
    compensateInputShift(same, unchanged.data(), rows, 0.01, &pool);
    QVERIFY(unchanged == w);
    EQ_EXPECT_ERROR(compensateInputShift(h, unchanged.data(), rows), Errc::InvalidArgument,
                    fmt::format("input statistics of size {} hold no shift", n));
  }

  // Block by block with the original inputs gives exactly the statistics of whole forward passes.
  void blockwiseStatisticsMatchWholeForwardPasses() {
    const auto src = ModelSource::open(kTinyLlama);
    ThreadPool pool(2);
    CalibrationOptions o;
    o.sequences = 2;
    o.length = 12;
    const Calibration c = calibrateSelf(*src, pool, o);
    const auto ws = model::WeightSource::of(*src);
    model::LoadOptions lo;
    lo.contextLength = 12;
    const auto lm = model::loadCausalLM(*ws, pool, lo);
    std::map<std::string, InputGram> whole;
    lm->setInputObserver([&](std::span<const std::string* const> names, const float* x, std::int64_t n,
                             std::int64_t cols) {
      for (const std::string* name : names) whole.try_emplace(*name, cols).first->second.add(x, n, &pool);
    });
    for (const auto& ids : c.texts) {
      lm->reset();
      lm->forward(ids);
    }
    // Equal up to float rounding: the engine's sums depend on where its buffers lie in memory (linear_simd.h).
    QCOMPARE(whole.size(), c.grams.size());
    for (const auto& [name, g] : whole) {
      QVERIFY2(c.grams.count(name), name.c_str());
      QCOMPARE(c.grams.at(name)->tokens, g.tokens);
      QVERIFY2(maxDiff(c.grams.at(name)->xtx, g.xtx) <= 1e-5 * maxAbs(g.xtx), name.c_str());
    }
  }

  // With the compressed model's inputs each weight's statistics see the weights replaced before it: stages that
  // feed it refresh them, weights that do not feed it leave them alone, and the next block sees the replaced block.
  void compressedInputsFollowReplacements() {
    const auto src = ModelSource::open(kTinyLlama);
    ThreadPool pool(2);
    CalibrationOptions o;
    o.sequences = 2;
    o.length = 12;
    const Calibration original = calibrateSelf(*src, pool, o);
    o.inputs = CalibrationOptions::Inputs::Compressed;
    SelfCalibration self(*src, pool, o);
    QCOMPARE(self.texts(), original.texts);
    const auto ws = model::WeightSource::of(*src);
    auto coarse = [&](const std::string& name) {  // a visibly different weight of the same shape
      model::Linear l = ws->linear(name);
      model::Linear r;
      r.rows = l.rows;
      r.cols = l.cols;
      r.f32.resize(static_cast<std::size_t>(l.rows * l.cols));
      for (std::int64_t i = 0; i < l.rows; ++i) l.row(i, r.f32.data() + i * l.cols);
      for (auto& v : r.f32) v = std::round(v * 8.0f) / 8.0f;
      return r;
    };
    const std::string p = "model.layers.0.";
    const auto q = self.gram(p + "self_attn.q_proj.weight");
    const auto& q0 = original.grams.at(p + "self_attn.q_proj.weight")->xtx;
    QVERIFY(maxDiff(q->xtx, q0) <= 1e-5 * maxAbs(q0));  // block 0's input is the embeddings
    self.replace(p + "self_attn.q_proj.weight", coarse(p + "self_attn.q_proj.weight"));
    QCOMPARE(self.gram(p + "self_attn.k_proj.weight").get(), q.get());  // q does not feed k
    self.replace(p + "self_attn.k_proj.weight", coarse(p + "self_attn.k_proj.weight"));
    self.replace(p + "self_attn.v_proj.weight", coarse(p + "self_attn.v_proj.weight"));
    const auto oProj = self.gram(p + "self_attn.o_proj.weight");
    const auto& o0 = original.grams.at(p + "self_attn.o_proj.weight")->xtx;
    QVERIFY(maxDiff(oProj->xtx, o0) > 1e-3 * maxAbs(o0));
    QCOMPARE(oProj->tokens, std::uint64_t(24));
    const auto& g0 = original.grams.at(p + "mlp.gate_proj.weight")->xtx;
    QVERIFY(maxDiff(self.gram(p + "mlp.gate_proj.weight")->xtx, g0) > 1e-3 * maxAbs(g0));
    // Block 1 sees block 0 with its replaced weights.
    const auto next = self.gram("model.layers.1.self_attn.q_proj.weight");
    const auto& n0 = original.grams.at("model.layers.1.self_attn.q_proj.weight")->xtx;
    QVERIFY(maxDiff(next->xtx, n0) > 1e-3 * maxAbs(n0));
    QVERIFY(!self.gram("model.embed_tokens.weight"));  // outside the blocks: none
    EQ_EXPECT_ERROR(self.gram(p + "mlp.down_proj.weight"), Errc::InvalidArgument,
                    kTinyLlama.string() + ": calibration statistics of \"" + p +
                        "mlp.down_proj.weight\" asked for after block 1");
    EQ_EXPECT_ERROR(self.replace("model.layers.1.self_attn.q_proj.weight", model::Linear{}), Errc::ShapeMismatch,
                    "\"model.layers.1.self_attn.q_proj.weight\" is [64, 64], the replacement [0, 0]");
    EQ_EXPECT_ERROR(self.replace("model.layers.1.self_attn.x_proj.weight", coarse(p + "self_attn.q_proj.weight")),
                    Errc::MissingTensor, "the model has no linear layer \"model.layers.1.self_attn.x_proj.weight\"");
    // The statistics passes stop at the stage asked for: down_proj's 128 x 128 statistics were never gathered.
    QVERIFY(self.peakBytes() == std::uint64_t(8 * 64 * 64 * 3));

    // Inputs::Shift: the same statistics as Compressed, and the shift of the inputs from the original model's.
    o.inputs = CalibrationOptions::Inputs::Shift;
    SelfCalibration both(*src, pool, o);
    const auto bq = both.gram(p + "self_attn.q_proj.weight");
    QVERIFY(maxDiff(bq->xtx, q0) <= 1e-5 * maxAbs(q0));
    QCOMPARE(maxAbs(bq->shift), 0.0);  // block 0's inputs are the same embeddings
    for (const char* w : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"})
      both.replace(p + w, coarse(p + w));
    const auto bo = both.gram(p + "self_attn.o_proj.weight");
    QVERIFY(maxDiff(bo->xtx, oProj->xtx) <= 1e-5 * maxAbs(oProj->xtx));
    QVERIFY(maxAbs(bo->shift) > 1e-3 * maxAbs(bo->xtx));
    QVERIFY(both.peakBytes() == std::uint64_t(16 * 64 * 64 * 2));  // q/k/v's and o's

    // Auto: Shift when a second copy of the model fits the budget beside twice the statistics and texts, else
    // Original (one block's statistics and the texts' hidden states: 8 x (3 x 64^2 + 128^2) + 4 x 2 x 12 x 64).
    o.inputs = CalibrationOptions::Inputs::Auto;
    QCOMPARE(SelfCalibration(*src, pool, o).inputs(), CalibrationOptions::Inputs::Shift);
    o.maxBytes = 8 * (3 * 64 * 64 + 128 * 128) + 4 * 2 * 12 * 64;
    QCOMPARE(SelfCalibration(*src, pool, o).inputs(), CalibrationOptions::Inputs::Original);
  }

  // Statistics passes that go on from where the last one stopped (BlockProgress) see the same inputs and leave the
  // same hidden states as whole passes, bit for bit, on every architecture: q/k norms (Qwen3), fused projections
  // (Phi-3), sandwich norms (Gemma 2); a mixture-of-experts block keeps nothing and runs whole.
  void blockProgressGoesOnExactly_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<bool>("keeps");
    for (const char* m : {"tiny-llama", "tiny-qwen3", "tiny-phi3", "tiny-gemma2"}) QTest::newRow(m) << m << true;
    QTest::newRow("tiny-mixtral") << "tiny-mixtral" << false;
  }
  void blockProgressGoesOnExactly() {
    QFETCH(QString, model);
    QFETCH(bool, keeps);
    ThreadPool pool(2);
    const auto src = ModelSource::open(eqtest::dataDir() / "models" / model.toStdString());
    const auto ws = model::WeightSource::of(*src);
    const auto lm = model::loadCausalLM(*ws, pool);
    std::map<std::string, std::vector<float>> seen;  // the last input observed, by weight
    std::map<std::string, int> times;
    lm->setInputObserver([&](std::span<const std::string* const> names, const float* x, std::int64_t n,
                             std::int64_t cols) {
      seen[*names.front()].assign(x, x + n * cols);
      ++times[*names.front()];
    });
    const std::vector<std::int32_t> ids{1, 17, 99, 3, 250, 8, 42};
    const std::int64_t n = static_cast<std::int64_t>(ids.size());
    std::vector<float> whole = lm->embed(ids), staged = whole;
    for (std::int64_t l = 0; l < lm->numLayers(); ++l) {
      seen.clear();
      lm->runLayer(l, whole.data(), n);
      const auto wholeSeen = seen;
      seen.clear();
      times.clear();
      model::BlockProgress p;
      for (int stop = 0; stop <= 3; ++stop) {
        std::vector<float> copy = staged;
        lm->runLayer(l, copy.data(), n, stop, &p);
        QCOMPARE(p.stage, keeps && stop > 0 ? stop : -1);
        QCOMPARE(p.bytes() > 0, keeps && stop > 0);
      }
      lm->runLayer(l, staged.data(), n, -1, &p);
      QCOMPARE(p.stage, -1);
      QVERIFY(staged == whole);
      QCOMPARE(seen.size(), wholeSeen.size());
      for (const auto& [name, x] : wholeSeen) {
        QVERIFY2(seen[name] == x, name.c_str());
        // Going on, a stage's inputs are observed once; the attention's input twice (its pass keeps nothing).
        const bool attentionInput = name.find(".o_proj") == std::string::npos && name.find("self_attn") != std::string::npos;
        if (keeps) QVERIFY2(times[name] == (attentionInput ? 2 : 1), name.c_str());
      }
    }
    // A kept stage is not gone on from by a pass that stops at or before it: that one runs from the input.
    model::BlockProgress p;
    std::vector<float> x = lm->embed(ids), y = x;
    lm->runLayer(0, y.data(), n, 2, &p);
    QCOMPARE(p.stage, keeps ? 2 : -1);
    times.clear();
    lm->runLayer(0, y.data(), n, 1, &p);
    QCOMPARE(p.stage, keeps ? 1 : -1);
    QCOMPARE(times.size(), std::size_t(2));  // q/k/v's and o's inputs again
  }

  // A weight swapped for its compressed version runs exactly as the same weight loaded from the .eqz file.
  void replacedWeightsRunAsTheEqzFile() {
    const auto src = ModelSource::open(kTinyLlama);
    CompressOptions co;
    co.target = {RateTarget::Mode::Bits, 3.0};
    const fs::path out = tmp_->path() / "r.eqz";
    compressModel(*src, out, co);
    ThreadPool pool(2);
    const auto eqz = model::WeightSource::open(out, pool);
    const auto orig = model::WeightSource::of(*src);
    const auto a = model::loadCausalLM(*eqz, pool), b = model::loadCausalLM(*orig, pool);
    const EqzFile f = EqzFile::open(out);
    int replaced = 0;
    for (const auto& t : f.tensors())
      if (t.encoding == Encoding::EntQuant && t.name.starts_with("model.layers.")) {
        b->replaceWeight(t.name, eqz->linear(t.name));
        ++replaced;
      }
    QCOMPARE(replaced, 14);
    // The blocks as the .eqz file's, up to float rounding (see above); without the swap they differ clearly.
    const std::vector<std::int32_t> ids{1, 17, 99, 3, 250};
    std::vector<float> x = a->embed(ids), y = x, z = x;
    const auto c = model::loadCausalLM(*orig, pool);
    for (std::int64_t l = 0; l < a->numLayers(); ++l) {
      a->runLayer(l, x.data(), 5);
      b->runLayer(l, y.data(), 5);
      c->runLayer(l, z.data(), 5);
    }
    QVERIFY(maxDiff(x, y) <= 1e-5 * maxAbs(x));
    QVERIFY(maxDiff(x, z) > 1e-3 * maxAbs(x));
    EQ_EXPECT_ERROR(a->runLayer(2, x.data(), 5), Errc::InvalidArgument, "layer 2 is out of range (the model has 2)");
  }

  // Every architecture the engine runs: fused projections (Phi-3) are replaced slice by slice, MoE (Mixtral) falls
  // back to the original inputs, and every tensor lands on its target.
  void calibratedCompressionAcrossArchitectures_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("inputs");
    for (const char* m : {"tiny-phi3", "tiny-qwen2", "tiny-qwen3", "tiny-gemma2", "tiny-mistral"})
      QTest::newRow(m) << m << "shift";
    QTest::newRow("tiny-mixtral") << "tiny-mixtral" << "original";
  }
  void calibratedCompressionAcrossArchitectures() {
    QFETCH(QString, model);
    QFETCH(QString, inputs);
    const auto src = ModelSource::open(eqtest::dataDir() / "models" / model.toStdString());
    CompressOptions o;
    o.target = {RateTarget::Mode::Bits, 4.0};
    o.allocation = CompressOptions::Allocation::Uniform;
    o.calibration = CompressOptions::Calibration::Self;
    o.calibrationOptions.sequences = 2;
    o.calibrationOptions.length = 8;
    const CompressSummary s = compressModel(*src, tmp_->path() / "a.eqz", o);
    QCOMPARE(QString::fromStdString(toJson(s)["calibration_inputs"].get<std::string>()), inputs);
    int compressed = 0;
    for (const auto& t : s.tensors)
      if (t.encoding == Encoding::EntQuant) {
        ++compressed;
        QVERIFY2(std::fabs(t.effectiveBits - 4.0) <= 0.03 || t.targetClamped, t.name.c_str());
      }
    QVERIFY(compressed > 0);
    // Statistics passes that stop at the stage they are for store the same codes as passes over whole blocks: the
    // same statistics, bit for bit (they did not even match from run to run while the engine's results depended on
    // where the heap put a replaced weight: common/aligned.h).
    const EqzFile partial = EqzFile::open(tmp_->path() / "a.eqz");
    auto sameAsPartial = [&](const char* file) {
      compressModel(*src, tmp_->path() / file, o);
      const EqzFile other = EqzFile::open(tmp_->path() / file);
      QCOMPARE(partial.tensors().size(), other.tensors().size());
      for (std::size_t i = 0; i < partial.tensors().size(); ++i)
        for (const auto& [key, section] : partial.tensors()[i].sections) {
          const auto a = partial.bytes(section);
          const auto b = other.bytes(*other.tensors()[i].section(key));
          QVERIFY2(std::equal(a.begin(), a.end(), b.begin(), b.end()), (partial.tensors()[i].name + " " + key).c_str());
        }
    };
    o.calibrationOptions.partialPasses = false;
    sameAsPartial("whole.eqz");
    o.calibrationOptions.partialPasses = true;
    // ... and so do partial passes that each run from the block's input (without BlockProgress).
    o.calibrationOptions.resumePasses = false;
    sameAsPartial("fromInput.eqz");
    o.calibrationOptions.resumePasses = true;
    if (model == "tiny-mixtral") {
      o.calibrationOptions.inputs = CalibrationOptions::Inputs::Shift;
      EQ_EXPECT_SETTING_ERROR(compressModel(*src, tmp_->path() / "b.eqz", o), Errc::Unsupported,
                              Setting::CalibrationInputs,
                              src->input().string() +
                                  ": the shift inputs do not support mixture-of-experts models (the compressed model "
                                  "may route a token to other experts than the original); choose the original inputs");
    }
  }

  void compressCalibrationErrors() {
    // Weights without the model around them: the engine cannot run it.
    const fs::path dir = tmp_->path() / "m";
    fs::create_directories(dir);
    fs::copy_file(kTinyLlama / "config.json", dir / "config.json");
    std::vector<float> w(64 * 64, 0.01f);
    {
      SafetensorsWriter sw(dir / "model.safetensors", {{"model.layers.0.self_attn.q_proj.weight", DType::F32, {64, 64}}});
      sw.append(std::as_bytes(std::span(w)));
      sw.finish();
    }
    const auto src = ModelSource::open(dir);
    CompressOptions o;
    o.calibration = CompressOptions::Calibration::Self;
    const fs::path out = tmp_->path() / "c.eqz";
    EQ_EXPECT_SETTING_ERROR(compressModel(*src, out, o), Errc::MissingTensor, Setting::SelfCalibration,
                            dir.string() + ": the model has no tensor \"model.embed_tokens.weight\"");
    QVERIFY(!fs::exists(out));
    const auto tiny = ModelSource::open(kTinyLlama);
    o.calibrationOptions.sequences = 2;
    o.calibrationOptions.length = 16;
    std::atomic<int> calls{0};
    o.keepGoing = [&] { return ++calls < 10; };
    EQ_EXPECT_ERROR(compressModel(*tiny, out, o), Errc::Cancelled, "compression cancelled");
    QVERIFY(!fs::exists(out));
  }

  // --allocation measured: the probe's KL, run from the cached inputs of the weight's block, equals the KL of whole
  // forward passes of the original and of a model with the weight swapped (CausalLM::forward, another path); the
  // weight itself gives zero, and the probe puts every weight back.
  void sensitivityMatchesWholeForwardPasses_data() {
    QTest::addColumn<QString>("weight");
    QTest::newRow("block 0 v") << "model.layers.0.self_attn.v_proj.weight";
    QTest::newRow("block 0 down") << "model.layers.0.mlp.down_proj.weight";
    QTest::newRow("block 1 o") << "model.layers.1.self_attn.o_proj.weight";
    QTest::newRow("block 1 up") << "model.layers.1.mlp.up_proj.weight";
  }
  void sensitivityMatchesWholeForwardPasses() {
    QFETCH(QString, weight);
    const std::string w = weight.toStdString();
    const auto src = ModelSource::open(kTinyLlama);
    ThreadPool pool(2);
    CalibrationOptions o;
    o.sequences = 2;
    o.length = 12;
    const auto texts = writeSelfTexts(*src, pool, o);
    QCOMPARE(texts, calibrateSelf(*src, pool, o).texts);  // the same texts as the calibration's
    SensitivityProbe probe(*src, pool, texts);
    QCOMPARE(probe.tokens(), std::uint64_t(24));
    const auto ws = model::WeightSource::of(*src);
    model::Linear coarse = ws->linear(w), same = coarse;
    {
      model::Linear r;
      r.rows = coarse.rows;
      r.cols = coarse.cols;
      r.f32.resize(static_cast<std::size_t>(r.rows * r.cols));
      for (std::int64_t i = 0; i < r.rows; ++i) coarse.row(i, r.f32.data() + i * r.cols);
      for (std::size_t i = 0; i < r.f32.size(); ++i) r.f32[i] *= i % 2 ? 0.25f : 1.75f;  // 75 % error
      coarse = std::move(r);
    }
    QVERIFY(probe.kl(w, same) <= 1e-6);
    const double kl = probe.kl(w, coarse);
    // The reference: whole forward passes, KL over every predicted position.
    const auto a = model::loadCausalLM(*ws, pool), b = model::loadCausalLM(*ws, pool);
    b->replaceWeight(w, coarse);
    double sum = 0;
    std::int64_t positions = 0;
    std::vector<double> la, lb;
    for (const auto& ids : texts) {
      a->reset();
      b->reset();
      const auto x = a->forward(ids), y = b->forward(ids);
      const auto v = a->vocabSize();
      for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
        logSoftmax(x.data() + i * v, v, la);
        logSoftmax(y.data() + i * v, v, lb);
        double d = 0;
        for (std::size_t k = 0; k < la.size(); ++k) d += std::exp(la[k]) * (la[k] - lb[k]);
        sum += std::max(d, 0.0);
        ++positions;
      }
    }
    const double reference = sum / static_cast<double>(positions);
    QVERIFY2(reference > 1e-6, qPrintable(QString::number(reference)));
    QVERIFY2(std::fabs(kl - reference) <= 1e-4 * reference + 1e-7,
             qPrintable(QString("%1 vs %2").arg(kl, 0, 'g', 10).arg(reference, 0, 'g', 10)));
    // Put back: the weight itself gives zero again, and measuring again gives the same.
    QVERIFY(probe.kl(w, same) <= 1e-6);
    QCOMPARE(probe.kl(w, coarse), kl);
  }

  void sensitivityErrors() {
    const auto src = ModelSource::open(kTinyLlama);
    ThreadPool pool(2);
    CalibrationOptions o;
    o.sequences = 2;
    o.length = 12;
    const auto texts = writeSelfTexts(*src, pool, o);
    // 4 bytes x 24 tokens x (64 hidden x 2 blocks + 256 vocabulary)
    EQ_EXPECT_ERROR(SensitivityProbe(*src, pool, texts, {}, 1000), Errc::InvalidArgument,
                    kTinyLlama.string() + ": measuring the weights' sensitivity on 24 tokens would need 36.0 KiB of "
                                          "memory, more than the budget of 1000 B; use the depth allocation instead");
    EQ_EXPECT_ERROR(SensitivityProbe(*src, pool, {{1}}), Errc::InvalidArgument,
                    kTinyLlama.string() + ": sensitivity needs a text of at least 2 tokens");
    EQ_EXPECT_ERROR(SensitivityProbe(*src, pool, texts, [] { return false; }), Errc::Cancelled,
                    "sensitivity measurement cancelled");
    SensitivityProbe probe(*src, pool, texts);
    const auto ws = model::WeightSource::of(*src);
    EQ_EXPECT_ERROR(probe.kl("model.embed_tokens.weight", ws->linear("model.embed_tokens.weight")),
                    Errc::InvalidArgument,
                    kTinyLlama.string() + ": \"model.embed_tokens.weight\" is not a weight of the model's blocks; its "
                                          "sensitivity cannot be measured");
    EQ_EXPECT_ERROR(probe.kl("model.layers.1.self_attn.x_proj.weight", model::Linear{}), Errc::MissingTensor,
                    kTinyLlama.string() + ": the model has no tensor \"model.layers.1.self_attn.x_proj.weight\"");
    const std::string q = "model.layers.0.self_attn.q_proj.weight";
    EQ_EXPECT_ERROR(probe.kl(q, model::Linear{}), Errc::ShapeMismatch,
                    "\"" + q + "\" is [64, 64], the replacement [0, 0]");
    QVERIFY(probe.kl(q, ws->linear(q)) <= 1e-6);  // a failed swap leaves the weight as it was
  }

  // compress --allocation measured: texts written for it alone (4, or the calibration's first), every compressed
  // tensor gets a measured sensitivity, the targets spread around the mean and the stored bits land on it.
  void compressWithMeasuredAllocation_data() {
    QTest::addColumn<bool>("calibrate");
    QTest::addColumn<int>("tokens");
    QTest::newRow("alone") << false << 4 * 16;
    QTest::newRow("with --calibration self") << true << 2 * 16;
  }
  void compressWithMeasuredAllocation() {
    QFETCH(bool, calibrate);
    QFETCH(int, tokens);
    const auto src = ModelSource::open(kTinyLlama);
    CompressOptions o;
    o.target = {RateTarget::Mode::Bits, 3.0};
    o.allocation = CompressOptions::Allocation::Measured;
    o.calibrationOptions.length = 16;
    if (calibrate) {
      o.calibration = CompressOptions::Calibration::Self;
      o.calibrationOptions.sequences = 2;
    }
    std::vector<std::string> phases;
    o.progress = [&](const Progress& p) {
      if (phases.empty() || phases.back() != phaseName(p.phase)) phases.push_back(std::string(phaseName(p.phase)));
    };
    const fs::path out = tmp_->path() / "m.eqz";
    const CompressSummary s = compressModel(*src, out, o);
    QCOMPARE(phases, (std::vector<std::string>{"calibrate", "analyze", "compress"}));
    QCOMPARE(toJson(s)["allocation"].get<std::string>(), std::string("measured"));
    QCOMPARE(s.sensitivityTokens, std::uint64_t(tokens));
    QVERIFY(s.sensitivitySeconds > 0);
    std::set<double> sensitivities, targets;
    for (const auto& t : s.tensors) {
      if (t.encoding != Encoding::EntQuant) continue;
      QVERIFY2(t.sensitivity > 0, t.name.c_str());
      sensitivities.insert(t.sensitivity);
      targets.insert(*t.targetBits);
    }
    QCOMPARE(sensitivities.size(), std::size_t(14));
    QVERIFY(targets.size() > 1);
    // The targets spend the same bits as 3.0 everywhere.
    double spent = 0, weights = 0;
    for (const auto& t : s.tensors)
      if (t.encoding == Encoding::EntQuant) {
        spent += *t.targetBits * static_cast<double>(t.numel);
        weights += static_cast<double>(t.numel);
      }
    QVERIFY2(std::fabs(spent / weights - 3.0) <= 1e-9, qPrintable(QString::number(spent / weights, 'g', 12)));
    const auto j = toJson(s);
    QCOMPARE(j["sensitivity_tokens"].get<int>(), tokens);
    for (const auto& t : j["tensors"])
      QCOMPARE(t.contains("sensitivity"), t["encoding"] == "entquant");
    const EqzFile f = EqzFile::open(out);
    QCOMPARE(f.index()["settings"]["allocation"].get<std::string>(), std::string("measured"));
    // Cancelled while measuring: nothing written.
    std::atomic<int> calls{0};
    o.progress = {};
    o.keepGoing = [&] { return ++calls < 40; };
    const fs::path cancelled = tmp_->path() / "c.eqz";
    EQ_EXPECT_ERROR(compressModel(*src, cancelled, o), Errc::Cancelled, "compression cancelled");
    QVERIFY(!fs::exists(cancelled));
  }

  // --calibration-text: windows of the user's text, each after BOS, spread evenly over the text.
  void cutCalibrationTextsWindows() {
    std::vector<std::int32_t> ids(100);
    std::iota(ids.begin(), ids.end(), 0);
    auto range = [](std::int32_t first, std::int32_t count, std::optional<std::int32_t> bos) {
      std::vector<std::int32_t> v;
      if (bos) v.push_back(*bos);
      for (std::int32_t i = 0; i < count; ++i) v.push_back(first + i);
      return v;
    };
    using Texts = std::vector<std::vector<std::int32_t>>;
    QCOMPARE(cutCalibrationTexts(ids, 11, 3, 500, "t.txt"), (Texts{range(0, 10, 500), range(30, 10, 500), range(60, 10, 500)}));
    QCOMPARE(cutCalibrationTexts(ids, 40, 32, std::nullopt, "t.txt"), (Texts{range(0, 40, {}), range(40, 40, {})}));
    QCOMPARE(cutCalibrationTexts(ids, 101, 32, 7, "t.txt"), (Texts{range(0, 100, 7)}));
    EQ_EXPECT_ERROR(cutCalibrationTexts(ids, 102, 32, 7, "t.txt"), Errc::InvalidArgument,
                    "t.txt: the text has 100 tokens, fewer than one calibration text of 101");
  }

  // A text longer than wholeBytes is not tokenized whole: one window from each of maxTexts equal parts, from the
  // part's first line start; a shorter one is cut from all its tokens.
  void calibrationTextsOfLongText() {
    const auto tok = text::Tokenizer::fromJson(byteTokenizer(), "bytes");
    std::string text;
    for (int i = 0; text.size() < 30000; ++i) text += fmt::format("line {:05} of the calibration text\n", i);
    std::vector<std::int32_t> all(text.begin(), text.end());
    using Texts = std::vector<std::vector<std::int32_t>>;
    QCOMPARE(calibrationTextsOf(text, tok, 65, 3, 1, "c.txt"), cutCalibrationTexts(all, 65, 3, 1, "c.txt"));
    Texts expected;
    for (std::size_t k = 0; k < 3; ++k) {
      std::size_t start = k * text.size() / 3;
      if (k > 0) start = text.find('\n', start) + 1;
      std::vector<std::int32_t> t{1};
      t.insert(t.end(), text.begin() + static_cast<long>(start), text.begin() + static_cast<long>(start) + 64);
      expected.push_back(t);
    }
    QCOMPARE(calibrationTextsOf(text, tok, 65, 3, 1, "c.txt", 1000), expected);
    QCOMPARE(expected[1][1], std::int32_t('l'));  // a line start
    EQ_EXPECT_ERROR(calibrationTextsOf(text, tok, 20000, 3, 1, "c.txt", 1000), Errc::InvalidArgument,
                    "c.txt: no part of the text holds a calibration text of 19999 tokens");
    EQ_EXPECT_ERROR(calibrationTextsOf("\xff" + text, tok, 65, 3, 1, "c.txt", 1000), Errc::InvalidArgument,
                    "c.txt: text is not valid UTF-8 (at byte 0)");
  }

  // compress --calibration-text: the model's tokenizer cuts the file; the summary, JSON and the file's settings say
  // so; a missing file, a model without a tokenizer and a text too short are clear errors, and nothing is written.
  void compressWithTextCalibration() {
    // tiny-llama with a tokenizer of its 256 ids: every byte falls back to <0xNN>, id = the byte.
    const fs::path dir = tmp_->path() / "m";
    fs::create_directories(dir);
    for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(kTinyLlama / f, dir / f);
    const auto srcNoTok = ModelSource::open(dir);
    const nlohmann::json tok = byteTokenizer();
    const fs::path text = tmp_->path() / "calib.txt";
    std::string body;
    for (int i = 0; i < 40; ++i) body += "The quick brown fox jumps over the lazy dog. ";
    {
      std::ofstream(text) << body;
    }
    CompressOptions o;
    o.target = {RateTarget::Mode::Bits, 4.0};
    o.allocation = CompressOptions::Allocation::Uniform;
    o.calibration = CompressOptions::Calibration::Text;
    o.calibrationFile = text;
    o.calibrationOptions.sequences = 3;
    o.calibrationOptions.length = 65;
    const fs::path out = tmp_->path() / "t.eqz";
    EQ_EXPECT_SETTING_ERROR(compressModel(*srcNoTok, out, o), Errc::NotFound, Setting::TextCalibration,
                            dir.string() + ": no tokenizer.json; calibrating on a text needs the model's tokenizer");
    QVERIFY(!fs::exists(out));
    {
      std::ofstream(dir / "tokenizer.json") << tok.dump();
    }
    const auto src = ModelSource::open(dir);
    const CompressSummary s = compressModel(*src, out, o);
    QCOMPARE(toJson(s)["calibration"].get<std::string>(), std::string("text"));
    QCOMPARE(s.calibrationTokens, std::uint64_t(3 * 65));
    QCOMPARE(toJson(s)["calibration_tokens"].get<int>(), 3 * 65);
    const EqzFile f = EqzFile::open(out);
    QCOMPARE(f.index()["settings"]["calibration"].get<std::string>(), std::string("text"));
    QCOMPARE(f.index()["settings"]["calibration_file"].get<std::string>(), text.string());
    for (const auto& t : s.tensors)
      if (t.encoding == Encoding::EntQuant) QVERIFY2(std::fabs(t.effectiveBits - 4.0) <= 0.03 || t.targetClamped, t.name.c_str());
    // The texts are the file's bytes after BOS (1): the same codes as --calibration self given those texts.
    CompressOptions given = o;
    given.calibration = CompressOptions::Calibration::Self;
    const std::int64_t windows = static_cast<std::int64_t>(body.size()) / 64;
    for (std::int64_t k = 0; k < 3; ++k) {
      std::vector<std::int32_t> t{1};
      const std::int64_t w = k * windows / 3;
      for (std::int64_t i = 0; i < 64; ++i) t.push_back(static_cast<unsigned char>(body[w * 64 + i]));
      given.calibrationOptions.texts.push_back(t);
    }
    const CompressSummary g = compressModel(*src, tmp_->path() / "g.eqz", given);
    QCOMPARE(toJson(g)["calibration"].get<std::string>(), std::string("self"));
    ThreadPool pool(2);
    const auto a = model::WeightSource::open(out, pool), b = model::WeightSource::open(tmp_->path() / "g.eqz", pool);
    for (const auto& t : s.tensors)
      if (t.encoding == Encoding::EntQuant) {
        const model::Linear la = a->linear(t.name), lb = b->linear(t.name);
        QVERIFY(!la.codes.empty());
        QCOMPARE(la.codes, lb.codes);
        QCOMPARE(la.scales, lb.scales);
      }

    o.calibrationFile = tmp_->path() / "absent.txt";
    const fs::path out2 = tmp_->path() / "u.eqz";
    try {
      compressModel(*src, out2, o);
      QFAIL("no error");
    } catch (const Error& e) {
      QVERIFY2(QString(e.what()).startsWith(QString::fromStdString(o.calibrationFile.string())), e.what());
      QCOMPARE(e.setting(), Setting::TextCalibration);
    }
    {
      std::ofstream(text) << "short";
    }
    o.calibrationFile = text;
    EQ_EXPECT_ERROR(compressModel(*src, out2, o), Errc::InvalidArgument,
                    text.string() + ": the text has 5 tokens, fewer than one calibration text of 64");
    QVERIFY(!fs::exists(out2));
  }

  void cliUsageErrors_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("message");
    const QString m = QString::fromStdString(kTinyLlama.string());
    QTest::newRow("value") << QStringList{"compress", m, "-o", "x.eqz", "--calibration", "data"}
                           << "entquant compress: --calibration must be none or self, not \"data\"";
    QTest::newRow("texts without self") << QStringList{"compress", m, "-o", "x.eqz", "--calibration-texts", "4"}
                                        << "entquant compress: --calibration-texts, --calibration-length and "
                                           "--calibration-inputs need --calibration self or --calibration-text";
    QTest::newRow("self and text") << QStringList{"compress", m, "-o", "x.eqz", "--calibration", "self",
                                                  "--calibration-text", "t.txt"}
                                   << "entquant compress: --calibration-text calibrates on that text; it excludes "
                                      "--calibration none|self";
    QTest::newRow("inputs") << QStringList{"compress", m, "-o", "x.eqz", "--calibration", "self", "--calibration-inputs", "mixed"}
                            << "entquant compress: --calibration-inputs must be auto, shift, original or compressed, not \"mixed\"";
    QTest::newRow("length") << QStringList{"compress", m, "-o", "x.eqz", "--calibration", "self", "--calibration-length", "1"}
                            << "entquant compress: --calibration-length must be at least 2";
    QTest::newRow("seed without self") << QStringList{"compress", m, "-o", "x.eqz", "--calibration-seed", "2"}
                                       << "entquant compress: --calibration-seed chooses the texts the model writes; "
                                          "it needs --calibration self";
    QTest::newRow("seed with text") << QStringList{"compress", m, "-o", "x.eqz", "--calibration-text", "t.txt",
                                                   "--calibration-seed", "2"}
                                    << "entquant compress: --calibration-seed chooses the texts the model writes; "
                                       "it needs --calibration self";
    QTest::newRow("seed negative") << QStringList{"compress", m, "-o", "x.eqz", "--calibration", "self",
                                                  "--calibration-seed", "-1"}
                                   << "entquant compress: --calibration-seed must be 0 or more";
    QTest::newRow("seed not a number") << QStringList{"compress", m, "-o", "x.eqz", "--calibration", "self",
                                                      "--calibration-seed", "two"}
                                       << "entquant compress: option --calibration-seed expects a number, got \"two\"";
    QTest::newRow("rtn") << QStringList{"compress", m, "-o", "x.eqz", "--method", "rtn4", "--calibration", "self"}
                         << "entquant compress: --objective, --calibration and --scales apply to --method entquant, not rtn4";
    QTest::newRow("scales") << QStringList{"compress", m, "-o", "x.eqz", "--scales", "s.safetensors", "--calibration", "self"}
                            << "entquant compress: --scales excludes --bits, --lambda, --objective, --allocation and "
                               "--calibration";
  }
  void cliUsageErrors() {
    QFETCH(QStringList, args);
    QFETCH(QString, message);
    const auto r = eqtest::runCli(args);
    QCOMPARE(r.code, 2);
    QVERIFY2(QString(r.err).startsWith(message + "\n"), r.err.constData());
  }

  void cliReportsCalibration() {
    const QString out = QString::fromStdString((tmp_->path() / "c.eqz").string());
    const auto r = eqtest::runCli({"compress", QString::fromStdString(kTinyLlama.string()), "-o", out, "--bits", "4",
                                   "--calibration", "self", "--calibration-texts", "2", "--calibration-length", "12",
                                   "--quiet"});
    QCOMPARE(r.code, 0);
    QVERIFY2(r.out.contains("error feedback calibrated on 24 self-written tokens (shift inputs)"), r.out.constData());
    const auto m = eqtest::runCli({"compress", QString::fromStdString(kTinyLlama.string()), "-o", out, "--bits", "3",
                                   "--allocation", "measured", "--calibration-length", "12", "--quiet"});
    QCOMPARE(m.code, 2);  // the texts' settings belong to --calibration self
    const auto n = eqtest::runCli({"compress", QString::fromStdString(kTinyLlama.string()), "-o", out, "--bits", "3",
                                   "--allocation", "measured", "--quiet"});
    QCOMPARE(n.code, 0);
    QVERIFY2(n.out.contains("measured bit allocation (sensitivities measured on 1024 tokens in"), n.out.constData());
  }

  // --calibration-seed: another seed, other texts and so other codes; the same seed, the same weights; the seed is
  // kept in the file's settings.
  void cliCalibrationSeed() {
    const QString model = QString::fromStdString(kTinyLlama.string());
    auto weightsOf = [&](const QString& seed, const QString& name) {
      const fs::path file = tmp_->path() / (name.toStdString() + ".eqz");
      const fs::path dir = tmp_->path() / name.toStdString();
      QStringList args{"compress", model, "-o", QString::fromStdString(file.string()), "--bits", "3", "--calibration",
                       "self", "--calibration-texts", "2", "--calibration-length", "12", "--quiet"};
      if (!seed.isEmpty()) args << "--calibration-seed" << seed;
      const auto c = eqtest::runCli(args);
      const auto d = c.code == 0 ? eqtest::runCli({"decompress", QString::fromStdString(file.string()), "-o",
                                                   QString::fromStdString(dir.string())})
                                 : c;
      if (d.code != 0) {  // the comparisons below then fail
        qWarning("%s", d.err.constData());
        return std::make_pair(std::uint64_t(0), std::string());
      }
      const EqzFile f = EqzFile::open(file);
      std::ifstream in(dir / "model.safetensors", std::ios::binary);
      return std::make_pair(f.index()["settings"]["calibration_seed"].get<std::uint64_t>(),
                            std::string(std::istreambuf_iterator<char>(in), {}));
    };
    const auto [seed1, w1] = weightsOf("", "default");
    const auto [seed1again, w1again] = weightsOf("1", "one");
    const auto [seed2, w2] = weightsOf("2", "two");
    QCOMPARE(seed1, std::uint64_t(1));
    QCOMPARE(seed1again, std::uint64_t(1));
    QCOMPARE(seed2, std::uint64_t(2));
    QVERIFY(!w1.empty());
    QVERIFY(w1 == w1again);
    QVERIFY(w1 != w2);
  }
};

QTEST_MAIN(TestCalibration)
#include "test_calibration.moc"
