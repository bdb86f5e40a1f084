// RTN int4/int3/int2 and NF4 baselines: bit-exact against a plain re-computation of the formulas in baseline.h,
// the RTN error bound, payload round trips and sizes (true bits per weight), edge groups and corrupt payloads.
#include "common/numerics.h"
#include "quant/baseline.h"
#include "test_util.h"

#include <algorithm>
#include <cfloat>
#include <cstring>
#include <limits>
#include <random>

using namespace eq;
using namespace eq::quant;

Q_DECLARE_METATYPE(BaselineMethod)

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// LLM-like weights: Student-t(3) times a log-normal per-row scale, rounded to bf16.
std::vector<float> heavyTailed(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<double> t(3.0);
  std::lognormal_distribution<double> rowScale(std::log(0.02), 0.5);
  std::vector<float> w(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    const double s = rowScale(rng);
    for (std::int64_t c = 0; c < cols; ++c) w[r * cols + c] = bf16ToF32(f32ToBf16(static_cast<float>(t(rng) * s)));
  }
  return w;
}

// ---- reference: the formulas of baseline.h, written out one group at a time ----
struct Reference {
  std::vector<unsigned> codes, zeros;  // unpacked
  std::vector<std::uint16_t> scales, deq;
};

bool isRtn(BaselineMethod m) { return m != BaselineMethod::Nf4; }

std::uint16_t refScale(float x) {
  const std::uint16_t h = f32ToF16(x);
  return h == 0x7C00 ? 0x7BFF : h;  // saturate at 65504
}

unsigned refNf4Nearest(float t) {
  unsigned best = 0;
  for (unsigned i = 1; i < 16; ++i)
    if (std::fabs(t - kNf4Codebook[i]) < std::fabs(t - kNf4Codebook[best])) best = i;
  return best;
}

void refRtnGroup(const float* w, std::int64_t n, int qmax, Reference& ref) {
  float mn = 0, mx = 0;
  for (std::int64_t j = 0; j < n; ++j)
    if (std::isfinite(w[j])) {
      mn = std::min(mn, w[j]);
      mx = std::max(mx, w[j]);
    }
  const std::uint16_t scale = refScale((mx - mn) / static_cast<float>(qmax));
  const float s = f16ToF32(scale);
  const int zero = s == 0 ? 0 : static_cast<int>(std::clamp(std::nearbyint(-mn / s), 0.0f, float(qmax)));
  ref.scales.push_back(scale);
  ref.zeros.push_back(zero);
  for (std::int64_t j = 0; j < n; ++j) {
    int q = 0;
    if (s == 0) q = 0;
    else if (std::isnan(w[j])) q = zero;
    else if (std::isinf(w[j])) q = w[j] > 0 ? qmax : 0;
    else q = static_cast<int>(std::clamp(std::nearbyint(w[j] / s) + float(zero), 0.0f, float(qmax)));
    ref.codes.push_back(q);
    ref.deq.push_back(f32ToBf16(static_cast<float>(q - zero) * s));
  }
}

void refNf4Group(const float* w, std::int64_t n, Reference& ref) {
  float absmax = 0;
  for (std::int64_t j = 0; j < n; ++j)
    if (std::isfinite(w[j])) absmax = std::max(absmax, std::fabs(w[j]));
  const std::uint16_t scale = refScale(absmax);
  const float s = f16ToF32(scale);
  ref.scales.push_back(scale);
  for (std::int64_t j = 0; j < n; ++j) {
    unsigned q = 7;
    if (s > 0 && std::isinf(w[j])) q = w[j] > 0 ? 15 : 0;
    // Clamping to [-1, 1] keeps the nearest entry; a float scan could not tell the entries of a huge t apart.
    else if (s > 0 && !std::isnan(w[j])) q = refNf4Nearest(std::clamp(w[j] / s, -1.0f, 1.0f));
    ref.codes.push_back(q);
    ref.deq.push_back(f32ToBf16(kNf4Codebook[q] * s));
  }
}

Reference reference(BaselineMethod m, const std::vector<float>& w, std::int64_t rows, std::int64_t cols, int g) {
  Reference ref;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c0 = 0; c0 < cols; c0 += g) {
      const std::int64_t n = std::min<std::int64_t>(g, cols - c0);
      if (isRtn(m)) refRtnGroup(&w[r * cols + c0], n, (1 << baselineCodeBits(m)) - 1, ref);
      else refNf4Group(&w[r * cols + c0], n, ref);
    }
  return ref;
}

// Value i of a LSB-first stream of b-bit values, one bit at a time.
unsigned unpack(const std::vector<std::uint8_t>& bytes, std::size_t i, int b) {
  unsigned v = 0;
  for (int k = 0; k < b; ++k) {
    const std::size_t bit = i * b + k;
    v |= ((bytes.at(bit / 8) >> (bit % 8)) & 1u) << k;
  }
  return v;
}

std::vector<unsigned> unpackAll(const std::vector<std::uint8_t>& bytes, std::size_t count, int b) {
  std::vector<unsigned> v(count);
  for (std::size_t i = 0; i < count; ++i) v[i] = unpack(bytes, i, b);
  return v;
}

std::vector<std::uint16_t> dequantize(const BaselineTensor& t) {
  std::vector<std::uint16_t> out(static_cast<std::size_t>(t.rows * t.cols));
  dequantizeBaseline(t, out.data());
  return out;
}

const BaselineMethod kMethods[] = {BaselineMethod::Rtn4, BaselineMethod::Rtn3, BaselineMethod::Rtn2,
                                   BaselineMethod::Nf4};

// Shapes for every data-driven test: odd widths, a single row, 1x1, other group sizes.
void addShapeRows(bool rtnOnly) {
  QTest::addColumn<BaselineMethod>("method");
  QTest::addColumn<qint64>("rows");
  QTest::addColumn<qint64>("cols");
  QTest::addColumn<int>("groupSize");
  struct Shape { qint64 rows, cols; int group; };
  const Shape shapes[] = {{4, 4096, 64}, {3, 64, 64}, {5, 100, 64}, {6, 37, 64}, {9, 129, 64}, {4, 63, 64},
                          {1, 200, 64},  {1, 1, 64},  {1, 7, 64},   {3, 90, 128}, {5, 11, 3}};
  for (const BaselineMethod m : kMethods) {
    if (rtnOnly && !isRtn(m)) continue;
    for (const Shape& s : shapes)
      QTest::newRow(qPrintable(QString("%1 %2x%3 g%4").arg(QString::fromUtf8(baselineMethodName(m).data()))
                                   .arg(s.rows).arg(s.cols).arg(s.group)))
          << m << s.rows << s.cols << s.group;
  }
}

unsigned seedOf(BaselineMethod m, qint64 rows, qint64 cols) {
  return static_cast<unsigned>(1000 * static_cast<int>(m) + 31 * rows + cols);
}

}  // namespace

class TestBaseline : public QObject {
  Q_OBJECT

 private slots:
  void names() {
    for (const BaselineMethod m : kMethods) {
      QVERIFY(parseBaselineMethod(baselineMethodName(m)).has_value());
      QCOMPARE(*parseBaselineMethod(baselineMethodName(m)), m);
    }
    QCOMPARE(baselineCodeBits(BaselineMethod::Rtn4), 4);
    QCOMPARE(baselineCodeBits(BaselineMethod::Rtn3), 3);
    QCOMPARE(baselineCodeBits(BaselineMethod::Rtn2), 2);
    QCOMPARE(baselineCodeBits(BaselineMethod::Nf4), 4);
    QVERIFY(!parseBaselineMethod("rtn5"));
    QVERIFY(!parseBaselineMethod("NF4"));
    QVERIFY(!parseBaselineMethod(""));
  }

  // Hand-computed payloads: packing across byte boundaries, round half to even (RTN), NF4 ties to the lower index.
  void goldenPayload_data() {
    QTest::addColumn<BaselineMethod>("method");
    QTest::addColumn<QList<float>>("weights");
    QTest::addColumn<QByteArray>("payload");
    QTest::addColumn<QList<float>>("dequantized");
    // scale 15/15 = 1, zero 0; 2.5 -> 2, 3.5 -> 4. Codes 0,15 | 2,4 = F0 42; scale 00 3C; zero 00.
    QTest::newRow("rtn4") << BaselineMethod::Rtn4 << QList<float>{0, 15, 2.5f, 3.5f}
                          << QByteArray::fromHex("f042003c00") << QList<float>{0, 15, 2, 4};
    // scale 7/7 = 1, zero 1; codes 0, 7, 3 in bits 0-2, 3-5, 6-8 = F8 00; scale 00 3C; zero 01.
    QTest::newRow("rtn3") << BaselineMethod::Rtn3 << QList<float>{-1, 6, 2.5f} << QByteArray::fromHex("f800003c01")
                          << QList<float>{-1, 6, 2};
    // scale 1; c8/2 and c6/2 lie halfway between two entries: codes 15, 7, 6 = 7F 06; scale 00 3C.
    const float c6 = kNf4Codebook[6], c8 = kNf4Codebook[8];
    QTest::newRow("nf4") << BaselineMethod::Nf4 << QList<float>{1, c8 / 2, c6 / 2} << QByteArray::fromHex("7f06003c")
                         << QList<float>{1, 0, bf16ToF32(f32ToBf16(c6))};
  }
  void goldenPayload() {
    QFETCH(BaselineMethod, method);
    QFETCH(QList<float>, weights);
    QFETCH(QByteArray, payload);
    QFETCH(QList<float>, dequantized);
    const BaselineTensor t = quantizeBaseline(method, weights.data(), 1, weights.size());
    const auto bytes = serializeBaseline(t);
    QCOMPARE(QByteArray(reinterpret_cast<const char*>(bytes.data()), bytes.size()).toHex(), payload.toHex());
    const auto deq = dequantize(t);
    for (qsizetype i = 0; i < weights.size(); ++i) QCOMPARE(bf16ToF32(deq[i]), dequantized[i]);
  }

  // (a) codes, scales, zeros and the dequantized tensor equal the formulas bit for bit.
  void matchesReference_data() { addShapeRows(false); }
  void matchesReference() {
    QFETCH(BaselineMethod, method);
    QFETCH(qint64, rows);
    QFETCH(qint64, cols);
    QFETCH(int, groupSize);
    const auto w = heavyTailed(rows, cols, seedOf(method, rows, cols));
    const BaselineTensor t = quantizeBaseline(method, w.data(), rows, cols, groupSize);
    const Reference ref = reference(method, w, rows, cols, groupSize);
    const int b = baselineCodeBits(method);
    QCOMPARE(t.rows, rows);
    QCOMPARE(t.cols, cols);
    QCOMPARE(t.groupSize, groupSize);
    QCOMPARE(t.codes.size(), std::size_t((rows * cols * b + 7) / 8));
    QCOMPARE(unpackAll(t.codes, rows * cols, b), ref.codes);
    QCOMPARE(t.scales, ref.scales);
    if (isRtn(method)) {
      QCOMPARE(t.zeros.size(), (ref.scales.size() * b + 7) / 8);
      QCOMPARE(unpackAll(t.zeros, ref.scales.size(), b), ref.zeros);
    } else {
      QVERIFY(t.zeros.empty());
    }
    QCOMPARE(dequantize(t), ref.deq);
  }

  // (b) RTN: every weight is within half a step of its value, up to the fp16 rounding of the scale (which can
  // move the top of the range by qmax times the scale's error) and the bf16 rounding of the output (2^-8 relative).
  void rtnErrorBound_data() { addShapeRows(true); }
  void rtnErrorBound() {
    QFETCH(BaselineMethod, method);
    QFETCH(qint64, rows);
    QFETCH(qint64, cols);
    QFETCH(int, groupSize);
    const auto w = heavyTailed(rows, cols, seedOf(method, rows, cols) + 7);
    const BaselineTensor t = quantizeBaseline(method, w.data(), rows, cols, groupSize);
    const auto deq = dequantize(t);
    const int qmax = (1 << baselineCodeBits(method)) - 1;
    const qint64 groupsPerRow = (cols + groupSize - 1) / groupSize;
    for (qint64 i = 0; i < rows * cols; ++i) {
      const double s = f16ToF32(t.scales[(i / cols) * groupsPerRow + (i % cols) / groupSize]);
      const double fp16Error = std::max(s * 0x1p-11, 0x1p-25);  // half an ulp, relative or subnormal
      const double d = bf16ToF32(deq[i]);
      const double bound = 0.5 * s + 2 * qmax * fp16Error + std::fabs(d) * 0x1p-8;
      if (std::fabs(w[i] - d) > bound)
        QFAIL(qPrintable(QString("weight %1: w %2, w_hat %3, scale %4").arg(i).arg(w[i]).arg(d).arg(s)));
    }
  }

  // (c) serialize -> deserialize gives the same tensor; the payload has the documented layout.
  void roundTrip_data() { addShapeRows(false); }
  void roundTrip() {
    QFETCH(BaselineMethod, method);
    QFETCH(qint64, rows);
    QFETCH(qint64, cols);
    QFETCH(int, groupSize);
    const auto w = heavyTailed(rows, cols, seedOf(method, rows, cols) + 13);
    const BaselineTensor t = quantizeBaseline(method, w.data(), rows, cols, groupSize);
    const auto payload = serializeBaseline(t);
    QCOMPARE(payload.size(), std::size_t(baselineStoredBytes(t)));
    QCOMPARE(payload.size(), t.codes.size() + 2 * t.scales.size() + t.zeros.size());
    QVERIFY(std::memcmp(payload.data(), t.codes.data(), t.codes.size()) == 0);
    const std::byte* scales = payload.data() + t.codes.size();
    for (std::size_t k = 0; k < t.scales.size(); ++k)
      QCOMPARE(int(scales[2 * k]) | (int(scales[2 * k + 1]) << 8), int(t.scales[k]));
    if (!t.zeros.empty())
      QVERIFY(std::memcmp(scales + 2 * t.scales.size(), t.zeros.data(), t.zeros.size()) == 0);

    const BaselineTensor u = deserializeBaseline(payload, method, rows, cols, groupSize, "rt.eqz");
    QCOMPARE(u.method, method);
    QCOMPARE(u.rows, rows);
    QCOMPARE(u.cols, cols);
    QCOMPARE(u.groupSize, groupSize);
    QCOMPARE(u.codes, t.codes);
    QCOMPARE(u.scales, t.scales);
    QCOMPARE(u.zeros, t.zeros);
    QCOMPARE(dequantize(u), dequantize(t));
    QCOMPARE(serializeBaseline(u), payload);
  }

  // (d) true bits per weight: codes + fp16 scales (+ b-bit zeros for RTN), every byte counted.
  void bitsPerWeight_data() {
    QTest::addColumn<BaselineMethod>("method");
    QTest::addColumn<qint64>("rows");
    QTest::addColumn<qint64>("cols");
    QTest::addColumn<quint64>("bytes");
    QTest::addColumn<double>("bits");
    // 4096 wide: b + (16 + b) / 64 for RTN, b + 16 / 64 for NF4.
    QTest::newRow("rtn4 4096") << BaselineMethod::Rtn4 << 8LL << 4096LL << quint64(8 * 2208) << 4.3125;
    QTest::newRow("rtn3 4096") << BaselineMethod::Rtn3 << 8LL << 4096LL << quint64(8 * 1688) << 3.296875;
    QTest::newRow("rtn2 4096") << BaselineMethod::Rtn2 << 8LL << 4096LL << quint64(8 * 1168) << 2.28125;
    QTest::newRow("nf4 4096") << BaselineMethod::Nf4 << 8LL << 4096LL << quint64(8 * 2176) << 4.25;
    // Partial groups and partial bytes: rtn3 3x100 = ceil(900/8) + 2*6 + ceil(18/8) = 113 + 12 + 3.
    QTest::newRow("rtn3 3x100") << BaselineMethod::Rtn3 << 3LL << 100LL << quint64(128) << 8.0 * 128 / 300;
    QTest::newRow("rtn2 1x1") << BaselineMethod::Rtn2 << 1LL << 1LL << quint64(4) << 32.0;
    QTest::newRow("nf4 7x37") << BaselineMethod::Nf4 << 7LL << 37LL << quint64(130 + 14) << 8.0 * 144 / 259;
  }
  void bitsPerWeight() {
    QFETCH(BaselineMethod, method);
    QFETCH(qint64, rows);
    QFETCH(qint64, cols);
    QFETCH(quint64, bytes);
    QFETCH(double, bits);
    const auto w = heavyTailed(rows, cols, 5);
    const BaselineTensor t = quantizeBaseline(method, w.data(), rows, cols);
    QCOMPARE(quint64(baselineStoredBytes(t)), bytes);
    QCOMPARE(serializeBaseline(t).size(), std::size_t(bytes));
    QVERIFY(baselineBitsPerWeight(t) == bits);
  }

  // (e) constant groups reproduce a bf16 constant exactly (no special case, see baseline.h).
  void constantGroups_data() {
    QTest::addColumn<BaselineMethod>("method");
    QTest::addColumn<float>("value");
    for (const BaselineMethod m : kMethods)
      for (const float v : {0.375f, -0.01234f, 3.0f, -1000.0f, 0.002f, 1.0f / 3})
        QTest::newRow(qPrintable(QString("%1 %2").arg(baselineMethodName(m).data()).arg(v))) << m << v;
  }
  void constantGroups() {
    QFETCH(BaselineMethod, method);
    QFETCH(float, value);
    const float c = bf16ToF32(f32ToBf16(value));
    for (const qint64 cols : {64LL, 1LL, 70LL}) {
      const std::vector<float> w(cols, c);
      const BaselineTensor t = quantizeBaseline(method, w.data(), 1, cols);
      const auto deq = dequantize(t);
      for (const std::uint16_t d : deq) QCOMPARE(bf16ToF32(d), c);
      QCOMPARE(dequantize(t), reference(method, w, 1, cols, 64).deq);
    }
  }

  void allZeroGroups_data() {
    QTest::addColumn<BaselineMethod>("method");
    for (const BaselineMethod m : kMethods) QTest::newRow(baselineMethodName(m).data()) << m;
  }
  void allZeroGroups() {
    QFETCH(BaselineMethod, method);
    std::vector<float> w(3 * 100, 0.0f);
    w[150] = -0.0f;
    const BaselineTensor t = quantizeBaseline(method, w.data(), 3, 100);
    for (const std::uint16_t s : t.scales) QCOMPARE(int(s), 0);
    const unsigned zeroCode = isRtn(method) ? 0 : 7;
    for (const unsigned q : unpackAll(t.codes, w.size(), baselineCodeBits(method))) QCOMPARE(q, zeroCode);
    for (const std::uint8_t z : t.zeros) QCOMPARE(int(z), 0);
    for (const std::uint16_t d : dequantize(t)) QCOMPARE(int(d), 0);
  }

  // (e) NaN quantizes as 0, +-inf saturate to the group's extreme codes; neither enters the statistics.
  void nonFinite_data() { allZeroGroups_data(); }
  void nonFinite() {
    QFETCH(BaselineMethod, method);
    auto w = heavyTailed(4, 64, 99);
    auto finite = w;
    for (int j : {3, 40}) {
      w[j] = kNaN;
      finite[j] = 0;
    }
    w[10] = kInf;
    w[64 + 5] = -kInf;
    for (int j = 128; j < 192; ++j) w[j] = j % 2 ? kNaN : kInf;  // row 2: nothing finite
    w[200] = FLT_MAX;                                             // row 3: the scale saturates at 65504
    const BaselineTensor t = quantizeBaseline(method, w.data(), 4, 64);
    const Reference ref = reference(method, w, 4, 64, 64);
    const auto deq = dequantize(t);
    QCOMPARE(deq, ref.deq);
    for (const std::uint16_t d : deq) QVERIFY(!std::isnan(bf16ToF32(d)));

    const BaselineTensor clean = quantizeBaseline(method, finite.data(), 4, 64);
    QCOMPARE(t.scales[0], clean.scales[0]);  // NaN and inf do not change the scale
    QCOMPARE(bf16ToF32(deq[3]), 0.0f);
    QCOMPARE(bf16ToF32(deq[40]), 0.0f);
    const int b = baselineCodeBits(method), qmax = (1 << b) - 1;
    QCOMPARE(unpack(t.codes, 10, b), unsigned(qmax));
    QCOMPARE(unpack(t.codes, 64 + 5, b), 0u);
    QCOMPARE(int(t.scales[2]), 0);
    for (int j = 128; j < 192; ++j) QCOMPARE(int(deq[j]), 0);
    QCOMPARE(int(t.scales[3]), 0x7BFF);  // 65504
    QVERIFY(bf16ToF32(deq[200]) >= 65504);
  }

  // (f) exact errors for wrong payload sizes and impossible arguments.
  void wrongPayloadSize_data() {
    QTest::addColumn<BaselineMethod>("method");
    QTest::addColumn<qint64>("rows");
    QTest::addColumn<qint64>("cols");
    QTest::addColumn<int>("size");
    QTest::addColumn<QString>("message");
    const QString label = "model.eqz: tensor \"blk.0.w\": ";
    QTest::newRow("rtn4 one long") << BaselineMethod::Rtn4 << 3LL << 100LL << 166 << label + "rtn4 payload is 166 bytes, expected 165";
    QTest::newRow("rtn4 one short") << BaselineMethod::Rtn4 << 3LL << 100LL << 164 << label + "rtn4 payload is 164 bytes, expected 165";
    QTest::newRow("rtn4 empty") << BaselineMethod::Rtn4 << 3LL << 100LL << 0 << label + "rtn4 payload is 0 bytes, expected 165";
    QTest::newRow("rtn3 1x1") << BaselineMethod::Rtn3 << 1LL << 1LL << 5 << label + "rtn3 payload is 5 bytes, expected 4";
    QTest::newRow("rtn2 2x4096") << BaselineMethod::Rtn2 << 2LL << 4096LL << 2335 << label + "rtn2 payload is 2335 bytes, expected 2336";
    QTest::newRow("nf4 with zeros") << BaselineMethod::Nf4 << 7LL << 37LL << 148 << label + "nf4 payload is 148 bytes, expected 144";
  }
  void wrongPayloadSize() {
    QFETCH(BaselineMethod, method);
    QFETCH(qint64, rows);
    QFETCH(qint64, cols);
    QFETCH(int, size);
    QFETCH(QString, message);
    const std::vector<std::byte> payload(size, std::byte{0x5A});
    EQ_EXPECT_ERROR(deserializeBaseline(payload, method, rows, cols, 64, "model.eqz: tensor \"blk.0.w\""),
                    Errc::Corrupt, message.toStdString());
  }

  void invalidArguments() {
    const std::vector<float> w(20, 1.0f);
    EQ_EXPECT_ERROR(quantizeBaseline(BaselineMethod::Rtn4, w.data(), 0, 5), Errc::InvalidArgument,
                    "baseline: rtn4 needs a positive shape and group size, got [0, 5] with groups of 64");
    EQ_EXPECT_ERROR(quantizeBaseline(BaselineMethod::Nf4, w.data(), 4, -5), Errc::InvalidArgument,
                    "baseline: nf4 needs a positive shape and group size, got [4, -5] with groups of 64");
    EQ_EXPECT_ERROR(quantizeBaseline(BaselineMethod::Rtn2, w.data(), 4, 5, 0), Errc::InvalidArgument,
                    "baseline: rtn2 needs a positive shape and group size, got [4, 5] with groups of 0");
    EQ_EXPECT_ERROR(quantizeBaseline(BaselineMethod::Rtn3, w.data(), 1LL << 40, 1LL << 40), Errc::InvalidArgument,
                    "baseline: rtn3 shape [1099511627776, 1099511627776] is too large");
    EQ_EXPECT_ERROR(deserializeBaseline({}, BaselineMethod::Nf4, 2, 3, -1, "f.eqz"), Errc::InvalidArgument,
                    "f.eqz: nf4 needs a positive shape and group size, got [2, 3] with groups of -1");
    EQ_EXPECT_ERROR(deserializeBaseline({}, static_cast<BaselineMethod>(9), 2, 3, 64, "f.eqz"),
                    Errc::InvalidArgument, "f.eqz: unknown baseline method 9");

    BaselineTensor t = quantizeBaseline(BaselineMethod::Rtn4, w.data(), 2, 10);
    t.codes.pop_back();
    std::vector<std::uint16_t> out(20);
    const char* inconsistent = "baseline: rtn4 tensor [2, 10] has 9 code bytes, 2 scales and 1 zero bytes; "
                               "expected 10, 2 and 1";
    EQ_EXPECT_ERROR(dequantizeBaseline(t, out.data()), Errc::InvalidArgument, inconsistent);
    EQ_EXPECT_ERROR(serializeBaseline(t), Errc::InvalidArgument, inconsistent);
  }
};

QTEST_MAIN(TestBaseline)
#include "test_baseline.moc"
