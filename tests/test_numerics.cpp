// bf16 / f16 / FP8 E4M3FN conversions: exhaustive checks against PyTorch's output (tests/data/numerics), the
// F16C hardware instructions, and independent brute-force references.
#include "common/numerics.h"
#include "test_util.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace eq;

namespace {

struct Fp8Golden {
  std::vector<float> decode;   // 256 entries
  std::vector<float> inputs;
  std::vector<uint8_t> saturated, plain;
};

// Layout written by tools/fixtures/make_fixtures.py.
Fp8Golden loadFp8Golden() {
  const std::string blob = eqtest::readText(eqtest::dataDir() / "numerics/fp8_golden.bin");
  Fp8Golden g;
  if (blob.size() < 16 || blob.compare(0, 8, "EQFP8GLD") != 0) return g;
  uint32_t nDecode = 0, nInputs = 0;
  std::memcpy(&nDecode, blob.data() + 8, 4);
  std::memcpy(&nInputs, blob.data() + 12, 4);
  const char* p = blob.data() + 16;
  g.decode.resize(nDecode);
  std::memcpy(g.decode.data(), p, nDecode * 4);
  p += nDecode * 4;
  g.inputs.resize(nInputs);
  std::memcpy(g.inputs.data(), p, nInputs * 4);
  p += nInputs * 4;
  g.saturated.assign(p, p + nInputs);
  g.plain.assign(p + nInputs, p + 2 * nInputs);
  return g;
}

bool sameFloat(float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b); }

// Brute force: the nearest finite FP8 value (ties to the even code), after clamping to +-448.
uint8_t referenceFp8(float x) {
  if (std::isnan(x)) return std::signbit(x) ? 0xFF : 0x7F;
  const double v = std::clamp(static_cast<double>(x), -448.0, 448.0);
  int best = -1;
  double bestDist = 0;
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    if ((c & 0x80) != (std::signbit(x) ? 0x80 : 0)) continue;  // keep the sign (so -tiny -> 0x80)
    const double d = std::abs(static_cast<double>(fp8E4M3ToF32(static_cast<uint8_t>(c))) - v);
    if (best < 0 || d < bestDist || (d == bestDist && (c & 1) == 0 && (best & 1) == 1)) {
      best = c;
      bestDist = d;
    }
  }
  return static_cast<uint8_t>(best);
}

// Brute force bf16 rounding: the nearer of the two neighbours, ties to the even one.
uint16_t referenceBf16(float f) {
  if (std::isnan(f)) return 0x7FC0;
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t lo = static_cast<uint16_t>(u >> 16), hi = static_cast<uint16_t>(lo + 1);
  const double dl = std::abs(static_cast<double>(bf16ToF32(lo)) - f);
  const double dh = std::isinf(bf16ToF32(hi)) && !std::isinf(f)
                        ? std::abs(std::ldexp(1.0, 128) - std::abs(static_cast<double>(f)))  // overflow boundary
                        : std::abs(static_cast<double>(bf16ToF32(hi)) - f);
  if ((u & 0xFFFF) == 0) return lo;
  if (dl < dh) return lo;
  if (dh < dl) return hi;
  return (lo & 1) ? hi : lo;
}

}  // namespace

class TestNumerics : public QObject {
  Q_OBJECT
  Fp8Golden golden_;

 private slots:
  void initTestCase() {
    golden_ = loadFp8Golden();
    QCOMPARE(golden_.decode.size(), std::size_t(256));
    QVERIFY(golden_.inputs.size() > 131072);
  }

  void fp8DecodeMatchesTorchForAll256Codes() {
    for (int c = 0; c < 256; ++c)
      QVERIFY2(sameFloat(fp8E4M3ToF32(static_cast<uint8_t>(c)), golden_.decode[c]), qPrintable(QString::number(c)));
  }

  void fp8EncodeMatchesTorch_data() {
    QTest::addColumn<int>("begin");
    QTest::addColumn<int>("end");
    QTest::newRow("every bf16 value") << 0 << 65536;
    QTest::newRow("every f16 value") << 65536 << 131072;
    QTest::newRow("f32 midpoints, +-1 ulp, specials, random") << 131072 << int(golden_.inputs.size());
  }
  void fp8EncodeMatchesTorch() {
    QFETCH(int, begin);
    QFETCH(int, end);
    int mismatches = 0;
    for (int i = begin; i < end; ++i) {
      const float x = golden_.inputs[i];
      if (f32ToFp8E4M3(x) != golden_.saturated[i] || f32ToFp8E4M3Unsaturated(x) != golden_.plain[i]) {
        if (++mismatches < 5)
          qWarning("x=%.10g sat ours=%02x torch=%02x plain ours=%02x torch=%02x", x, f32ToFp8E4M3(x),
                   golden_.saturated[i], f32ToFp8E4M3Unsaturated(x), golden_.plain[i]);
      }
    }
    QCOMPARE(mismatches, 0);
  }

  void fp8EncodeMatchesBruteForceOnEveryBf16() {
    for (uint32_t h = 0; h < 65536; ++h) {
      const float x = bf16ToF32(static_cast<uint16_t>(h));
      QCOMPARE(int(f32ToFp8E4M3(x)), int(referenceFp8(x)));
    }
  }

  void fp8Boundaries_data() {
    QTest::addColumn<float>("x");
    QTest::addColumn<int>("code");
    QTest::newRow("+0") << 0.0f << 0x00;
    QTest::newRow("-0 keeps its sign bit") << -0.0f << 0x80;
    QTest::newRow("max 448") << 448.0f << 0x7E;
    QTest::newRow("464 saturates") << 464.0f << 0x7E;
    QTest::newRow("1e30 saturates") << 1e30f << 0x7E;
    QTest::newRow("+inf saturates") << std::numeric_limits<float>::infinity() << 0x7E;
    QTest::newRow("-inf saturates") << -std::numeric_limits<float>::infinity() << 0xFE;
    QTest::newRow("NaN") << std::numeric_limits<float>::quiet_NaN() << 0x7F;
    QTest::newRow("min subnormal 2^-9") << 0x1p-9f << 0x01;
    QTest::newRow("half of min subnormal ties to 0") << 0x1p-10f << 0x00;
    QTest::newRow("1.5 x 2^-9 ties to even 2") << 3 * 0x1p-10f << 0x02;
    QTest::newRow("2.5 x 2^-9 ties to even 2") << 5 * 0x1p-10f << 0x02;
    QTest::newRow("max subnormal 7 x 2^-9") << 7 * 0x1p-9f << 0x07;
    QTest::newRow("7.5 x 2^-9 ties to min normal") << 15 * 0x1p-10f << 0x08;
    QTest::newRow("min normal 2^-6") << 0x1p-6f << 0x08;
    QTest::newRow("1.0") << 1.0f << 0x38;
    QTest::newRow("1.0625 ties to even 1.0") << 1.0625f << 0x38;
    QTest::newRow("1.1875 ties to even 1.25") << 1.1875f << 0x3A;
    QTest::newRow("-2.0") << -2.0f << 0xC0;
    QTest::newRow("240 < 448") << 240.0f << 0x77;
    QTest::newRow("tiny negative rounds to -0") << -1e-30f << 0x80;
  }
  void fp8Boundaries() {
    QFETCH(float, x);
    QFETCH(int, code);
    QCOMPARE(int(f32ToFp8E4M3(x)), code);
  }

  void fp8EveryCodeRoundTrips() {
    for (int c = 0; c < 256; ++c) {
      const float v = fp8E4M3ToF32(static_cast<uint8_t>(c));
      QCOMPARE(int(f32ToFp8E4M3(v)), c);
    }
  }

  void bf16EveryValueRoundTrips() {
    for (uint32_t h = 0; h < 65536; ++h) {
      const float f = bf16ToF32(static_cast<uint16_t>(h));
      if (std::isnan(f)) QCOMPARE(int(f32ToBf16(f)), 0x7FC0);
      else QCOMPARE(int(f32ToBf16(f)), int(h));
    }
  }

  void bf16RoundingMatchesBruteForce() {
    std::mt19937 rng(7);
    for (int i = 0; i < 2'000'000; ++i) {
      const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
      if (f32ToBf16(f) != referenceBf16(f)) QFAIL(qPrintable(QString("mismatch at %1").arg(double(f))));
    }
    QCOMPARE(int(f32ToBf16(1.0f + 0x1p-8f)), 0x3F80);       // tie -> even (down)
    QCOMPARE(int(f32ToBf16(1.0f + 3 * 0x1p-8f)), 0x3F82);   // tie -> even (up)
    QCOMPARE(int(f32ToBf16(std::bit_cast<float>(0x7F7FFFFFu))), 0x7F80);  // FLT_MAX rounds to inf
  }

  void f16DecodeMatchesF16cForAllValues() {
    for (uint32_t h = 0; h < 65536; ++h)
      QVERIFY(sameFloat(f16ToF32(static_cast<uint16_t>(h)), _cvtsh_ss(static_cast<unsigned short>(h))));
  }

  void f16EncodeMatchesF16c() {
    std::mt19937 rng(11);
    auto check = [](float f) {
      const uint16_t hw = _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
      return f32ToF16(f) == hw;
    };
    for (uint32_t h = 0; h < 65536; ++h) {  // every bf16 pattern covers all exponents
      const float f = bf16ToF32(static_cast<uint16_t>(h));
      if (!check(f)) QFAIL(qPrintable(QString("bf16 pattern %1").arg(h)));
    }
    for (int i = 0; i < 4'000'000; ++i) {
      const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
      if (!check(f)) QFAIL(qPrintable(QString("random %1").arg(double(f))));
    }
    for (uint32_t h = 0; h < 65536; ++h) {  // midpoints between neighbouring halves, and +-1 ulp of them
      const float a = f16ToF32(static_cast<uint16_t>(h)), b = f16ToF32(static_cast<uint16_t>(h + 1));
      if (!std::isfinite(a) || !std::isfinite(b)) continue;
      const float m = static_cast<float>((static_cast<double>(a) + b) / 2);
      QVERIFY(check(m) && check(std::nextafter(m, 0.0f)) && check(std::nextafter(m, 1e30f)));
    }
  }
};

QTEST_MAIN(TestNumerics)
#include "test_numerics.moc"
