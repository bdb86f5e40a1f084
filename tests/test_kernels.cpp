// The CPU engine's matrix kernels (core/model/linear_*.cpp) on every instruction set this machine runs, against a
// plain double-precision reference: f32, bf16, FP8 E4M3 and int8 weights, with and without bias, one token (GEMV)
// and many (GEMM, including more than one 256-token pass), sizes that are not multiples of the vector width, the
// window or the register tile, and weights starting at every offset inside a cache line.
#include "common/error.h"
#include "common/numerics.h"
#include "common/thread_pool.h"
#include "model/linear.h"
#include "model/linear_kernels.h"
#include "test_util.h"

#include <fmt/format.h>

#include <cmath>
#include <new>
#include <random>

using namespace eq;
using namespace eq::model;
using kernels::WeightType;

namespace {

constexpr KernelIsa kIsas[] = {KernelIsa::Generic, KernelIsa::Avx2, KernelIsa::Avx512Bw, KernelIsa::Avx512, KernelIsa::Amx};

std::size_t elementBytes(WeightType t) {
  return t == WeightType::F32 ? 4 : t == WeightType::BF16 ? 2 : 1;
}

// A matrix stored `offset` bytes after a cache-line boundary, its last byte the last of its allocation (so that
// AddressSanitizer sees any read past the end).
class TestMatrix {
 public:
  TestMatrix(WeightType type, std::int64_t rows, std::int64_t cols, std::size_t offset, bool withBias,
             std::mt19937& rng)
      : type_(type), rows_(rows), cols_(cols), offset_(offset) {
    const std::size_t n = static_cast<std::size_t>(rows * cols), bytes = offset + n * elementBytes(type);
    mem_ = static_cast<std::uint8_t*>(::operator new(bytes, std::align_val_t{64}));
    values_.resize(n);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> byte(0, 255);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint8_t* p = mem_ + offset + i * elementBytes(type);
      switch (type) {
        case WeightType::F32: {
          const float v = normal(rng);
          std::memcpy(p, &v, 4);
          values_[i] = v;
          break;
        }
        case WeightType::BF16: {
          const std::uint16_t h = f32ToBf16(normal(rng));
          std::memcpy(p, &h, 2);
          values_[i] = bf16ToF32(h);
          break;
        }
        case WeightType::Fp8: {
          std::uint8_t c;
          do c = static_cast<std::uint8_t>(byte(rng));
          while ((c & 0x7F) == 0x7F);  // NaN codes never come out of the quantizer
          *p = c;
          values_[i] = fp8E4M3ToF32(c);
          break;
        }
        case WeightType::Int8:
          *p = static_cast<std::uint8_t>(byte(rng));
          values_[i] = static_cast<float>(static_cast<std::int8_t>(*p));
          break;
      }
    }
    if (type == WeightType::Fp8 || type == WeightType::Int8)
      for (std::int64_t r = 0; r < rows; ++r) scales_.push_back(std::ldexp(0.5f + 0.1f * normal(rng), -6));
    if (withBias)
      for (std::int64_t r = 0; r < rows; ++r) bias_.push_back(normal(rng));
  }
  ~TestMatrix() { ::operator delete(mem_, std::align_val_t{64}); }
  TestMatrix(const TestMatrix&) = delete;
  TestMatrix& operator=(const TestMatrix&) = delete;

  kernels::Weights weights() const {
    kernels::Weights w;
    w.type = type_;
    w.data = mem_ + offset_;
    w.rows = rows_;
    w.cols = cols_;
    w.scales = scales_.empty() ? nullptr : scales_.data();
    w.bias = bias_.empty() ? nullptr : bias_.data();
    return w;
  }

  // Y[n][rows] in double, and for each entry the sum of |terms| (the scale of its rounding error).
  void reference(const std::vector<float>& x, std::int64_t n, std::vector<double>& y, std::vector<double>& mag) const {
    y.assign(static_cast<std::size_t>(n * rows_), 0.0);
    mag.assign(y.size(), 0.0);
    for (std::int64_t t = 0; t < n; ++t)
      for (std::int64_t r = 0; r < rows_; ++r) {
        double s = 0, a = 0;
        for (std::int64_t j = 0; j < cols_; ++j) {
          const double p = double(values_[r * cols_ + j]) * x[t * cols_ + j];
          s += p;
          a += std::fabs(p);
        }
        const double scale = scales_.empty() ? 1.0 : scales_[r], b = bias_.empty() ? 0.0 : bias_[r];
        y[t * rows_ + r] = s * scale + b;
        mag[t * rows_ + r] = a * std::fabs(scale) + std::fabs(b);
      }
  }

 private:
  WeightType type_;
  std::int64_t rows_, cols_;
  std::size_t offset_;
  std::uint8_t* mem_;
  std::vector<float> values_, scales_, bias_;
};

const char* typeName(WeightType t) {
  switch (t) {
    case WeightType::F32: return "f32";
    case WeightType::BF16: return "bf16";
    case WeightType::Fp8: return "fp8";
    case WeightType::Int8: return "int8";
  }
  return "?";
}

// Largest |y - ref| / (1e-6 + sum of |terms|): fp32 accumulation of up to a few thousand terms stays far below
// 1e-5, while a weight multiplied with the wrong activation shows up at the 1e-2 level.
double worstError(const std::vector<float>& y, const std::vector<double>& ref, const std::vector<double>& mag) {
  double worst = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double e = std::fabs(y[i] - ref[i]) / (1e-6 + mag[i]);
    worst = std::isnan(e) ? INFINITY : std::max(worst, e);
  }
  return worst;
}

}  // namespace

class TestKernels : public QObject {
  Q_OBJECT
  ThreadPool pool_{2};

 private slots:
  void isaChoice() {
    const KernelIsa initial = kernelIsa();
    QVERIFY(kernelIsaSupported(initial));
    QVERIFY(kernelIsaSupported(KernelIsa::Generic));
    for (const KernelIsa isa : kIsas) {
      QCOMPARE(kernels::kernelSet(isa) != nullptr, kernelIsaSupported(isa));
      QCOMPARE(setKernelIsa(isa), kernelIsaSupported(isa));
      if (kernelIsaSupported(isa)) QCOMPARE(kernelIsa(), isa);
    }
    QCOMPARE(kernelIsaName(KernelIsa::Avx512), std::string_view("avx512"));
    QCOMPARE(kernelIsaName(KernelIsa::Avx512Bw), std::string_view("avx512bw"));
    QVERIFY(setKernelIsa(initial));
    qInfo("kernels in use: %s", kernelIsaName(initial).data());
  }

  void matchReference_data() {
    QTest::addColumn<int>("isa");
    for (const KernelIsa isa : kIsas) QTest::newRow(kernelIsaName(isa).data()) << static_cast<int>(isa);
  }
  void matchReference() {
    QFETCH(int, isa);
    const kernels::KernelSet* k = kernels::kernelSet(static_cast<KernelIsa>(isa));
    if (!k) QSKIP("this CPU lacks the instruction set");
    std::mt19937 rng(1234);
    struct Shape {
      std::int64_t rows, cols;
    };
    // rows: below, at and past the register tiles (6 and 4 rows), the 48-row GEMM task and the 32-row GEMV task;
    // cols: below one window, exact windows (32, 64, 256: every row in the same place of its cache line), and
    // ragged ends.
    const Shape shapes[] = {{1, 1}, {3, 5}, {7, 31}, {13, 64}, {50, 100}, {49, 256}, {97, 333}, {33, 1088}};
    const std::int64_t tokens[] = {1, 2, 17, 64, 70};
    for (const WeightType type : {WeightType::F32, WeightType::BF16, WeightType::Fp8, WeightType::Int8})
      for (const Shape s : shapes)
        for (const std::size_t offset : {std::size_t(0), std::size_t(16), std::size_t(36)}) {
          if (offset % elementBytes(type)) continue;
          const bool withBias = (s.rows + offset) % 2 == 0;
          const TestMatrix m(type, s.rows, s.cols, offset, withBias, rng);
          for (const std::int64_t n : tokens) {
            check(*k, m, s.rows, s.cols, n, rng,
                  fmt::format("{} {}x{} at +{}, n={}{}", typeName(type), s.rows, s.cols, offset, n,
                              withBias ? ", bias" : ""));
            if (QTest::currentTestFailed()) return;
          }
        }
    // Every offset inside a cache line, and more tokens than one GEMM pass takes.
    for (std::size_t offset = 0; offset < 64; ++offset) {
      const TestMatrix m(WeightType::Fp8, 9, 128, offset, true, rng);
      check(*k, m, 9, 128, offset % 2 ? 1 : 3, rng, fmt::format("fp8 9x128 at +{}", offset));
      if (QTest::currentTestFailed()) return;
    }
    const TestMatrix big(WeightType::BF16, 11, 70, 2, false, rng);
    check(*k, big, 11, 70, 300, rng, "bf16 11x70, n=300");
  }

  // Matrices sharing one input (q/k/v, gate/up) in one hand-off give exactly what each gives alone: the same
  // kernel computes every row; only how rows are grouped into tasks changes. Mixed types and sizes (a k/v-sized
  // matrix beside a larger one), with and without bias, on every instruction set.
  void sharedInputEqualsSeparate_data() { matchReference_data(); }
  void sharedInputEqualsSeparate() {
    QFETCH(int, isa);
    const kernels::KernelSet* k = kernels::kernelSet(static_cast<KernelIsa>(isa));
    if (!k) QSKIP("this CPU lacks the instruction set");
    std::mt19937 rng(99);
    for (const std::int64_t cols : {std::int64_t(64), std::int64_t(333)}) {
      const TestMatrix a(WeightType::Fp8, 97, cols, 0, true, rng), b(WeightType::Fp8, 33, cols, 16, false, rng),
          c(WeightType::BF16, 33, cols, 2, true, rng), d(WeightType::Int8, 5, cols, 36, false, rng);
      const kernels::Weights w[] = {a.weights(), b.weights(), c.weights(), d.weights()};
      std::normal_distribution<float> normal(0.0f, 1.0f);
      std::vector<float> x(static_cast<std::size_t>(cols));
      for (auto& v : x) v = normal(rng);
      std::vector<std::vector<float>> shared, alone;
      std::vector<float*> out;
      for (const auto& wi : w) {
        shared.emplace_back(static_cast<std::size_t>(wi.rows), NAN);
        alone.emplace_back(static_cast<std::size_t>(wi.rows), NAN);
        out.push_back(shared.back().data());
        kernels::forward(*k, wi, x.data(), 1, alone.back().data(), pool_);
      }
      kernels::gemvShared(*k, w, std::size(w), x.data(), out.data(), pool_);
      for (std::size_t i = 0; i < std::size(w); ++i) QCOMPARE(shared[i], alone[i]);
    }
  }

  // The tile GEMM (AMX) against the exact result: the activations' two bf16 parts leave at most 2^-16 (1.5e-5) of
  // each term out, besides the float32 additions (measured: 7e-6 worst, against the AVX-512 float32 kernels' 3e-6;
  // both printed; rounding the activations to bf16 alone would err by up to 2^-8 of the terms). Several matrices of one width give the same outputs
  // together (activations packed once) as alone; more tokens than one pass takes (512).
  void tilesMatchFloatKernels() {
    const kernels::KernelSet* amx = kernels::kernelSet(KernelIsa::Amx);
    const kernels::KernelSet* f32 = kernels::kernelSet(KernelIsa::Avx512);
    if (!amx || !f32) QSKIP("this CPU lacks AMX");
    QVERIFY(amx->tiles != nullptr);
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    double worst = 0, worstFloat = 0;
    for (const std::int64_t cols : {std::int64_t(64), std::int64_t(1000), std::int64_t(2048)}) {
      const TestMatrix a(WeightType::Fp8, 300, cols, 16, true, rng), b(WeightType::BF16, 40, cols, 2, false, rng),
          c(WeightType::Int8, 129, cols, 0, true, rng);
      const kernels::Weights w[] = {a.weights(), b.weights(), c.weights()};
      for (const std::int64_t n : {amx->tiles->minTokens, std::int64_t(33), std::int64_t(600)}) {
        std::vector<float> x(static_cast<std::size_t>(n * cols));
        for (auto& v : x) v = normal(rng) * std::exp(2.0f * normal(rng));  // magnitudes over several octaves
        std::vector<std::vector<float>> together, alone;
        std::vector<float*> out;
        for (const auto& wi : w) {
          together.emplace_back(static_cast<std::size_t>(n * wi.rows), NAN);
          out.push_back(together.back().data());
        }
        kernels::forwardShared(*amx, w, std::size(w), x.data(), n, out.data(), pool_);
        for (std::size_t i = 0; i < std::size(w); ++i) {
          std::vector<float> y(static_cast<std::size_t>(n * w[i].rows), NAN), ref(y.size(), NAN);
          kernels::forward(*amx, w[i], x.data(), n, y.data(), pool_);
          QVERIFY2(y == together[i], qPrintable(QString("matrix %1, %2 columns, n=%3").arg(i).arg(cols).arg(n)));
          kernels::forward(*f32, w[i], x.data(), n, ref.data(), pool_);
          const TestMatrix& m = i == 0 ? a : i == 1 ? b : c;
          std::vector<double> exact, mag;
          m.reference(x, n, exact, mag);
          for (std::size_t j = 0; j < y.size(); ++j) {
            const double e = std::fabs(static_cast<double>(y[j]) - exact[j]) / (1e-6 + mag[j]);
            const double ef = std::fabs(static_cast<double>(ref[j]) - exact[j]) / (1e-6 + mag[j]);
            worst = std::isnan(e) ? INFINITY : std::max(worst, e);
            worstFloat = std::max(worstFloat, ef);
          }
        }
      }
    }
    qInfo("worst error: tiles %.3g, float32 kernels %.3g of the terms' magnitude", worst, worstFloat);
    QVERIFY2(worst < 2e-5, qPrintable(QString::number(worst)));
  }

  // forwardShared's misuse: outputs and matrices that do not pair up, matrices of other widths.
  void sharedInputErrors() {
    Linear a, b;
    a.rows = b.rows = 2;
    a.cols = 3;
    b.cols = 4;
    a.f32.assign(6, 1.0f);
    b.f32.assign(8, 1.0f);
    const Linear* both[] = {&a, &b};
    std::vector<float> x(4, 1.0f), ya(2), yb(2);
    float* one[] = {ya.data()};
    float* two[] = {ya.data(), yb.data()};
    EQ_EXPECT_ERROR(forwardShared(both, x.data(), 1, one, pool_), Errc::InvalidArgument, "forwardShared: 2 matrices, 1 outputs");
    EQ_EXPECT_ERROR(forwardShared(both, x.data(), 1, two, pool_), Errc::InvalidArgument,
                    "forwardShared: matrices of 3 and 4 columns");
  }

  // Linear::forward follows setKernelIsa, and every instruction set gives the same logits up to rounding.
  void linearFollowsIsa() {
    std::mt19937 rng(7);
    Linear l;
    l.kind = Linear::Kind::Codes;
    l.rows = 40;
    l.cols = 192;
    for (std::int64_t i = 0; i < l.rows * l.cols; ++i) l.codes.push_back(static_cast<std::uint8_t>(rng() % 0x7F));
    l.scales.assign(static_cast<std::size_t>(l.rows), 0.01f);
    l.bias.assign(static_cast<std::size_t>(l.rows), 0.5f);
    std::vector<float> x(static_cast<std::size_t>(5 * l.cols));
    for (auto& v : x) v = static_cast<float>(rng() % 1000) / 500.0f - 1.0f;
    const KernelIsa initial = kernelIsa();
    std::vector<float> first;
    for (const KernelIsa isa : kIsas) {
      if (!setKernelIsa(isa)) continue;
      for (const std::int64_t n : {1, 5}) {
        std::vector<float> y(static_cast<std::size_t>(n * l.rows));
        l.forward(x.data(), n, y.data(), pool_);
        if (n == 1 && first.empty()) first = y;
        if (n == 1)
          for (std::size_t i = 0; i < y.size(); ++i)
            QVERIFY(std::fabs(y[i] - first[i]) <= 1e-5f * std::fabs(first[i]) + 1e-5f);
        std::vector<float> one(static_cast<std::size_t>(l.rows));
        l.forward(x.data() + (n - 1) * l.cols, 1, one.data(), pool_);  // the last token alone
        for (std::int64_t r = 0; r < l.rows; ++r)
          QVERIFY(std::fabs(y[(n - 1) * l.rows + r] - one[r]) <= 1e-5f * std::fabs(one[r]) + 1e-5f);
      }
    }
    QVERIFY(setKernelIsa(initial));
  }

 private:
  void check(const kernels::KernelSet& k, const TestMatrix& m, std::int64_t rows, std::int64_t cols, std::int64_t n,
             std::mt19937& rng, const std::string& what) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(n * cols));
    for (auto& v : x) v = normal(rng);
    std::vector<float> y(static_cast<std::size_t>(n * rows), NAN);
    kernels::forward(k, m.weights(), x.data(), n, y.data(), pool_);
    std::vector<double> ref, mag;
    m.reference(x, n, ref, mag);
    const double e = worstError(y, ref, mag);
    QVERIFY2(e < 1e-5, qPrintable(QString("%1 (%2): relative error %3").arg(what.c_str(), k.name).arg(e)));
  }
};

QTEST_MAIN(TestKernels)
#include "test_kernels.moc"
