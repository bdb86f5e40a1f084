// compress -> .eqz -> verify -> decompress: exact round trips (decompressed weights equal the dequantized codes
// bit for bit, kept tensors byte for byte), bits targets hit, layer rules, cancel and write failures leave
// nothing behind, and corrupt .eqz files give specific errors.
#include "codec/rans.h"
#include "common/thread_pool.h"
#include "common/units.h"
#include "format/archive.h"
#include "format/eqz.h"
#include "model/model_source.h"
#include "format/safetensors_writer.h"
#include "model/weight_source.h"
#include "pipeline/compress.h"
#include "pipeline/eqz_tools.h"
#include "quant/eqz_decode.h"
#include "pipeline/inspect.h"
#include "quant/scale_grid.h"
#include "test_util.h"

#include <sys/resource.h>

#include <csignal>
#include <cstring>
#include <random>
#include <set>

using namespace eq;
namespace fs = std::filesystem;

namespace {

fs::path models() { return eqtest::dataDir() / "models"; }

// A Llama-shaped folder with larger, LLM-like (Student-t, log-normal row scales) bf16 weights. `mixed` gives
// each tensor a different tail (degrees of freedom) and row-scale spread, as real layers differ.
// outlierLog2 != 0: the same values, but q_proj's column 5 divided by 2^outlierLog2 and up_proj's row 4 and
// down_proj's column 7 multiplied by it (exact in bf16), as the exact rescalings of a model between its layers do.
void writeSyntheticModel(const fs::path& dir, int hidden, int inter, unsigned seed, bool mixed = false,
                         int outlierLog2 = 0) {
  fs::create_directories(dir);
  std::mt19937 rng(seed);
  std::vector<TensorSpec> specs{{"model.embed_tokens.weight", DType::BF16, {64, hidden}},
                                {"model.layers.0.self_attn.q_proj.weight", DType::BF16, {hidden, hidden}},
                                {"model.layers.0.mlp.up_proj.weight", DType::BF16, {inter, hidden}},
                                {"model.layers.0.mlp.down_proj.weight", DType::BF16, {hidden, inter}},
                                {"model.norm.weight", DType::F32, {hidden}}};
  SafetensorsWriter w(dir / "model.safetensors", specs);
  int index = 0;
  for (const auto& s : specs) {
    std::student_t_distribution<double> t(mixed ? 2.0 + 3.0 * index : 3.0);
    std::normal_distribution<double> ln(0, mixed ? 0.2 + 0.3 * index : 0.5);
    ++index;
    const std::int64_t cols = s.shape.back(), rows = static_cast<std::int64_t>(s.bytes() / dtypeSize(s.dtype)) / cols;
    std::vector<std::byte> bytes(s.bytes());
    for (std::int64_t r = 0; r < rows; ++r) {
      const double scale = 0.02 * std::exp(ln(rng));
      for (std::int64_t j = 0; j < cols; ++j) {
        float v = static_cast<float>(t(rng) * scale);
        if (outlierLog2) {
          const float up = std::ldexp(1.0f, outlierLog2);
          if (s.name.find("q_proj") != std::string::npos && j == 5) v = bf16ToF32(f32ToBf16(v)) / up;
          if ((s.name.find("up_proj") != std::string::npos && r == 4) ||
              (s.name.find("down_proj") != std::string::npos && j == 7))
            v = bf16ToF32(f32ToBf16(v)) * up;
        }
        if (s.dtype == DType::F32) std::memcpy(bytes.data() + 4 * (r * cols + j), &v, 4);
        else {
          const std::uint16_t h = f32ToBf16(v);
          std::memcpy(bytes.data() + 2 * (r * cols + j), &h, 2);
        }
      }
    }
    w.append(bytes);
  }
  w.finish();
  eqtest::writeFile(dir / "config.json", nlohmann::json{{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
      {"hidden_size", hidden}, {"intermediate_size", inter}, {"num_hidden_layers", 1}, {"num_attention_heads", 4},
      {"vocab_size", 64}}.dump());
  eqtest::writeFile(dir / "tokenizer.json", R"({"model": {"type": "BPE"}})");
}

std::vector<float> tensorAsFloat(const ModelSource& src, const ModelTensor& t) {
  const auto m = quant::MatrixView::of(src.data(t), t.info->dtype, t.info->shape);
  std::vector<float> w(m.numel());
  for (std::int64_t r = 0; r < m.rows; ++r) m.row(r, w.data() + r * m.cols);
  return w;
}

}  // namespace

class TestPipeline : public QObject {
  Q_OBJECT
  std::unique_ptr<TempDir> tmp_;
  ThreadPool pool_{2};

 private slots:
  void init() { tmp_ = std::make_unique<TempDir>("eq-test"); }
  void cleanup() { tmp_.reset(); }

  void roundTrip_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("method");
    QTest::addColumn<QString>("format");
    QTest::addColumn<double>("bits");
    QTest::addColumn<double>("lambda");
    for (const char* m : {"tiny-llama", "tiny-qwen2", "tiny-phi3", "tiny-mixtral"}) {
      QTest::newRow(qPrintable(QString("%1 fp8 3 bits").arg(m))) << m << "entquant" << "fp8" << 3.0 << 0.0;
      QTest::newRow(qPrintable(QString("%1 int8 4 bits").arg(m))) << m << "entquant" << "int8" << 4.0 << 0.0;
      QTest::newRow(qPrintable(QString("%1 lambda 14.5").arg(m))) << m << "entquant" << "fp8" << 0.0 << 14.5;
      QTest::newRow(qPrintable(QString("%1 rtn3").arg(m))) << m << "rtn3" << "fp8" << 0.0 << 0.0;
      QTest::newRow(qPrintable(QString("%1 nf4").arg(m))) << m << "nf4" << "fp8" << 0.0 << 0.0;
    }
  }
  void roundTrip() {
    QFETCH(QString, model);
    QFETCH(QString, method);
    QFETCH(QString, format);
    QFETCH(double, bits);
    QFETCH(double, lambda);
    const auto src = ModelSource::open(models() / model.toStdString());
    CompressOptions o;
    o.method = *parseMethod(method.toStdString());
    o.format = *quant::parseCodeFormat(format.toStdString());
    o.threads = 2;
    if (lambda > 0) o.target = {quant::RateTarget::Mode::Lambda, lambda};
    else if (bits > 0) o.target = {quant::RateTarget::Mode::Bits, bits};
    const fs::path out = tmp_->path() / "m.eqz";
    const CompressSummary s = compressModel(*src, out, o);
    QCOMPARE(s.tensors.size(), src->tensors().size());
    QCOMPARE(s.outputBytes, std::uint64_t(fs::file_size(out)));

    const EqzFile f = EqzFile::open(out);
    const VerifyReport v = verifyEqz(f, pool_);
    QVERIFY(v.tensorsDecoded > 0);
    decompressEqz(f, tmp_->path() / "dec", pool_);
    const auto back = ModelSource::open(tmp_->path() / "dec");
    QVERIFY(back->config());
    QCOMPARE(back->tensors().size(), src->tensors().size());
    for (std::size_t i = 0; i < f.tensors().size(); ++i) {
      const EqzTensor& et = f.tensors()[i];
      const ModelTensor* orig = src->find(et.name);
      const ModelTensor* dec = back->find(et.name);
      QVERIFY(orig && dec);
      const auto db = back->data(*dec);
      if (et.encoding == Encoding::Raw) {  // kept tensors: byte for byte
        const auto ob = src->data(*orig);
        QVERIFY(ob.size() == db.size() && std::memcmp(ob.data(), db.data(), ob.size()) == 0);
        QVERIFY(!orig->cls.compressible);
        continue;
      }
      QCOMPARE(dec->info->dtype, DType::BF16);
      DType dt;
      const auto decoded = decodeTensor(f, et, nullptr, dt);
      QVERIFY(decoded.size() == db.size() && std::memcmp(decoded.data(), db.data(), db.size()) == 0);
      if (et.encoding != Encoding::EntQuant) continue;
      // Independently: each weight is bf16(value(q) * s) with q the exact quantization of the original weight at
      // the stored row scale.
      const auto w = tensorAsFloat(*src, *orig);
      const auto scales = f.bytes(*et.section("scales"));
      const auto fmtc = *quant::parseCodeFormat(et.codeFormat);
      const std::int64_t cols = et.shape.back();
      const auto* got = reinterpret_cast<const std::uint16_t*>(db.data());
      for (std::size_t j = 0; j < w.size(); ++j) {
        std::uint16_t sb;
        std::memcpy(&sb, scales.data() + 2 * (j / cols), 2);
        const float sf = bf16ToF32(sb);
        if (quant::dequantizeOne(fmtc, quant::quantizeOne(fmtc, w[j], sf), sf) != got[j])
          QFAIL(qPrintable(QString("%1[%2] differs").arg(eqtest::q(et.name)).arg(j)));
      }
    }
    // inspect on the container reports the same model
    const InspectReport ri = inspectEqz(f), ro = inspectModel(*src);
    QCOMPARE(ri.parametersTotal, ro.parametersTotal);
    QCOMPARE(ri.config->architecture(), ro.config->architecture());
  }

  void bitsTargetsAreHit_data() {
    QTest::addColumn<double>("bits");
    QTest::addColumn<QString>("format");
    for (double b : {2.1, 2.5, 3.0, 4.0}) QTest::newRow(qPrintable(QString("fp8 %1").arg(b))) << b << "fp8";
    QTest::newRow("int8 3.0") << 3.0 << "int8";
  }
  void bitsTargetsAreHit() {
    QFETCH(double, bits);
    QFETCH(QString, format);
    writeSyntheticModel(tmp_->path() / "syn", 512, 1024, 7);
    const auto src = ModelSource::open(tmp_->path() / "syn");
    CompressOptions o;
    o.target = {quant::RateTarget::Mode::Bits, bits};
    o.format = *quant::parseCodeFormat(format.toStdString());
    o.allocation = CompressOptions::Allocation::Uniform;  // every tensor at the target (the default moves bits)
    const CompressSummary s = compressModel(*src, tmp_->path() / "s.eqz", o);
    int compressed = 0;
    for (const auto& t : s.tensors) {
      if (t.encoding == Encoding::Raw) continue;
      ++compressed;
      QVERIFY2(std::fabs(t.effectiveBits - bits) <= 0.03,
               qPrintable(QString("%1: %2 bits for a target of %3").arg(eqtest::q(t.name)).arg(t.effectiveBits).arg(bits)));
      QVERIFY(t.entropyBits < t.effectiveBits);
      QVERIFY(t.relL1 > 0 && t.relL1 < 1);
    }
    QCOMPARE(compressed, 3);
    QVERIFY(std::fabs(s.effectiveBpw - bits) <= 0.03);
    QCOMPARE(s.compressedWeights, std::uint64_t(512 * 512 + 2 * 512 * 1024));
  }

  void globalAllocationSpendsTheSameBitsBetter() {
    writeSyntheticModel(tmp_->path() / "syn", 512, 1024, 11, true);
    const auto src = ModelSource::open(tmp_->path() / "syn");
    auto weightedMse = [](const CompressSummary& s) {
      double e = 0, n = 0;
      for (const auto& t : s.tensors)
        if (t.encoding == Encoding::EntQuant) e += t.relL2 * t.relL2 * double(t.numel), n += double(t.numel);
      return e / n;
    };
    CompressOptions o;
    o.target = {quant::RateTarget::Mode::Bits, 2.5};
    o.allocation = CompressOptions::Allocation::Uniform;
    o.balancedAllocation = false;  // the plain relative MSE, which this test sums (the balanced one weighs elements)
    const CompressSummary uniform = compressModel(*src, tmp_->path() / "u.eqz", o);
    QCOMPARE(toJson(uniform)["allocation"].get<std::string>(), std::string("uniform"));
    o.allocation = CompressOptions::Allocation::Global;
    std::vector<std::string> phases;
    o.progress = [&](const Progress& p) { phases.push_back(std::string(phaseName(p.phase))); };
    const CompressSummary global = compressModel(*src, tmp_->path() / "g.eqz", o);
    QCOMPARE(toJson(global)["allocation"].get<std::string>(), std::string("global"));
    QCOMPARE(std::string(phases.front()), std::string("analyze"));
    QVERIFY(std::fabs(global.effectiveBpw - 2.5) <= 0.03);
    std::set<double> targets;
    for (const auto& t : global.tensors)
      if (t.targetBits) targets.insert(std::round(*t.targetBits * 100) / 100);
    QVERIFY2(targets.size() > 1, "the allocation should differ between tensors");
    qInfo("weighted relative MSE at %.3f bits: uniform %.5f, global %.5f (%.3f bits)", uniform.effectiveBpw,
          weightedMse(uniform), weightedMse(global), global.effectiveBpw);
    QVERIFY(weightedMse(global) < weightedMse(uniform));
  }

  // The balanced error does not change when a row or a column is scaled by a power of two, as the exact rescalings
  // between a model's layers do (docs/QUALITY.md, "Outlier channels"), so the bits hardly move (what moves them at
  // all: each tensor's rows still trade bits by their plain error, and a 64x smaller column sinks into the codes'
  // subnormal range). The plain relative MSE, dominated by the 64x row or column, moves a tensor's bits by more
  // than a bit.
  void balancedAllocationIgnoresRescaledRowsAndColumns() {
    writeSyntheticModel(tmp_->path() / "plain", 256, 512, 5);
    writeSyntheticModel(tmp_->path() / "rescaled", 256, 512, 5, false, 6);
    CompressOptions o;
    o.target = {quant::RateTarget::Mode::Bits, 2.5};
    auto targets = [&](const char* model) {
      const auto src = ModelSource::open(tmp_->path() / model);
      std::map<std::string, double> out;
      for (const auto& t : compressModel(*src, tmp_->path() / "b.eqz", o).tensors)
        if (t.targetBits) out[t.name] = *t.targetBits;
      return out;
    };
    auto moved = [&] {
      const auto plain = targets("plain"), rescaled = targets("rescaled");
      double most = 0;
      for (const auto& [name, bits] : plain) most = std::max(most, std::fabs(rescaled.at(name) - bits));
      return most;
    };
    const double balanced = moved();
    QCOMPARE(EqzFile::open(tmp_->path() / "b.eqz").index().at("settings").at("allocation_error").get<std::string>(),
             std::string("balanced"));
    o.balancedAllocation = false;
    const double matrix = moved();
    QCOMPARE(EqzFile::open(tmp_->path() / "b.eqz").index().at("settings").at("allocation_error").get<std::string>(),
             std::string("matrix"));
    qInfo("largest change of a tensor's bits: balanced %.4f, matrix %.4f", balanced, matrix);
    QVERIFY(balanced < 0.15);
    QVERIFY(matrix > 1.0);
  }

  void layerRules() {
    writeSyntheticModel(tmp_->path() / "syn", 256, 512, 3);
    const auto src = ModelSource::open(tmp_->path() / "syn");
    CompressOptions o;
    o.target = {quant::RateTarget::Mode::Bits, 3.0};
    o.layerRules = {LayerRule::parse("mlp=2.5"), LayerRule::parse("down_proj=4"), LayerRule::parse("q_proj=keep")};
    const CompressSummary s = compressModel(*src, tmp_->path() / "r.eqz", o);
    for (const auto& t : s.tensors) {
      if (t.name.find("q_proj") != std::string::npos) QCOMPARE(t.encoding, Encoding::Raw);
      if (t.name.find("up_proj") != std::string::npos) QCOMPARE(t.targetBits.value_or(0), 2.5);
      if (t.name.find("down_proj") != std::string::npos) QCOMPARE(t.targetBits.value_or(0), 4.0);
    }
    // (the CLI puts "--layer-bits " in front: test_cli)
    EQ_EXPECT_SETTING_ERROR(LayerRule::parse("mlp"), Errc::InvalidArgument, Setting::LayerRule,
                            "\"mlp\": expected REGEX=BITS or REGEX=keep");
    EQ_EXPECT_SETTING_ERROR(
        LayerRule::parse("(=3"), Errc::InvalidArgument, Setting::LayerRule,
        "\"(=3\": \"(\" is not a valid regular expression (missing closing parenthesis at offset 1)");
    EQ_EXPECT_SETTING_ERROR(LayerRule::parse("mlp=9"), Errc::InvalidArgument, Setting::LayerRule,
                            "\"mlp=9\": bits must be a number in (0, 8] or \"keep\"");
  }

  void cancelLeavesNothing_data() {
    QTest::addColumn<int>("after");
    for (int n : {1, 3, 10, 40}) QTest::newRow(qPrintable(QString("after %1 checks").arg(n))) << n;
  }
  void cancelLeavesNothing() {
    QFETCH(int, after);
    writeSyntheticModel(tmp_->path() / "syn", 256, 512, 5);
    const auto src = ModelSource::open(tmp_->path() / "syn");
    fs::create_directories(tmp_->path() / "out");
    std::atomic<int> calls{0};
    CompressOptions o;
    o.keepGoing = [&] { return ++calls < after; };
    EQ_EXPECT_ERROR(compressModel(*src, tmp_->path() / "out/c.eqz", o), Errc::Cancelled, "compression cancelled");
    QVERIFY(fs::is_empty(tmp_->path() / "out"));
  }

  void writeFailureLeavesNothing() {
    writeSyntheticModel(tmp_->path() / "syn", 256, 512, 6);
    const auto src = ModelSource::open(tmp_->path() / "syn");
    fs::create_directories(tmp_->path() / "out");
    // A file-size limit makes write() fail with EFBIG, as a full disk makes it fail with ENOSPC.
    rlimit old{};
    getrlimit(RLIMIT_FSIZE, &old);
    const auto oldHandler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = old;
    lim.rlim_cur = 100 * 1024;
    setrlimit(RLIMIT_FSIZE, &lim);
    bool threw = false;
    try {
      compressModel(*src, tmp_->path() / "out/big.eqz", CompressOptions{});
    } catch (const Error& e) {
      threw = true;
      QVERIFY2(std::string(e.what()).find("big.eqz") != std::string::npos, e.what());
    }
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, oldHandler);
    QVERIFY(threw);
    QVERIFY(fs::is_empty(tmp_->path() / "out"));
  }

  void nonFiniteWeightsAreRejected() {
    TempDir d("eq-test");
    SafetensorsWriter w(d.path() / "model.safetensors", {{"model.layers.0.mlp.up_proj.weight", DType::F32, {2, 4}}});
    std::vector<float> v{1, 2, 3, 4, 5, std::numeric_limits<float>::quiet_NaN(), 7, 8};
    w.append(std::as_bytes(std::span(v)));
    w.finish();
    const auto src = ModelSource::open(d.path());
    EQ_EXPECT_ERROR(compressModel(*src, tmp_->path() / "n.eqz", CompressOptions{}), Errc::Unsupported,
                    d.path().string() + ": tensor \"model.layers.0.mlp.up_proj.weight\": contains NaN or infinite "
                    "weights, which cannot be quantized");
    QVERIFY(!fs::exists(tmp_->path() / "n.eqz"));
  }

  void corruptContainers_data() {
    QTest::addColumn<QString>("damage");
    QTest::addColumn<QString>("stage");
    QTest::addColumn<QString>("message");
    QTest::newRow("stream byte") << "stream" << "verify"
                                 << "{path}: section \"stream\" of tensor \"model.layers.0.mlp.down_proj.weight\" fails its checksum; the file is corrupt";
    QTest::newRow("truncated") << "truncate" << "open" << "{path}: the file is {size} bytes but its preamble says {full}; it is truncated or was modified";
    QTest::newRow("magic") << "magic" << "open" << "{path}: not an .eqz file (wrong magic bytes)";
    QTest::newRow("future version") << "version" << "open" << "{path}: .eqz format version 2.0; this build reads version 1.x";
    QTest::newRow("preamble") << "preamble" << "open" << "{path}: the preamble checksum does not match; the file is corrupt";
    QTest::newRow("index") << "index" << "open" << "{path}: the index checksum does not match; the file is corrupt";
    QTest::newRow("tiny") << "tiny" << "open" << "{path}: too small to be an .eqz file (10 bytes)";
  }
  void corruptContainers() {
    QFETCH(QString, damage);
    QFETCH(QString, stage);
    QFETCH(QString, message);
    const auto src = ModelSource::open(models() / "tiny-llama");
    const fs::path out = tmp_->path() / "c.eqz";
    compressModel(*src, out, CompressOptions{});
    std::string bytes = eqtest::readText(out);
    const std::size_t full = bytes.size();
    const auto f0 = EqzFile::open(out);
    if (damage == "stream") {
      for (const auto& t : f0.tensors())
        if (t.name == "model.layers.0.mlp.down_proj.weight") bytes[t.section("stream")->offset + 40] ^= 0x10;
    } else if (damage == "truncate") {
      bytes.resize(bytes.size() - 100);
    } else if (damage == "magic") {
      bytes[1] = 'X';
    } else if (damage == "version") {
      bytes[8] = 2;
    } else if (damage == "preamble") {
      bytes[20] ^= 1;
    } else if (damage == "index") {
      bytes[bytes.size() - 3] ^= 1;
    } else {
      bytes.resize(10);
    }
    const fs::path bad = tmp_->path() / "bad.eqz";
    eqtest::writeFile(bad, bytes);
    QString expected = message;
    expected.replace("{path}", eqtest::q(bad.string())).replace("{size}", QString::number(bytes.size()))
        .replace("{full}", QString::number(full));
    try {
      const EqzFile f = EqzFile::open(bad);
      QCOMPARE(stage, QString("verify"));
      verifyEqz(f, pool_);
      QFAIL("no error");
    } catch (const Error& e) {
      QCOMPARE(QString(e.what()), expected);
    }
  }

  // Hostile files whose checksums all match (found by fuzzing, tests/fuzz): the index edited, `blob` appended as a
  // new section, and the index, preamble and their checksums written again, as a forger would.
  static std::string resealed(const fs::path& eqz, const std::function<void(nlohmann::json&, std::uint64_t)>& edit,
                              const std::string& blob = {}) {
    std::string bytes = eqtest::readText(eqz);
    auto u64 = [&](std::size_t at) {
      std::uint64_t v;
      std::memcpy(&v, bytes.data() + at, 8);
      return v;
    };
    auto put = [&](std::size_t at, std::uint64_t v) { std::memcpy(bytes.data() + at, &v, 8); };
    auto pad = [&] { bytes.resize((bytes.size() + kEqzAlign - 1) / kEqzAlign * kEqzAlign, '\0'); };
    nlohmann::json index = EqzFile::open(eqz).index();
    bytes.resize(u64(16));
    pad();
    const std::uint64_t blobAt = bytes.size();
    bytes += blob;
    pad();
    edit(index, blobAt);
    const std::string text = index.dump();
    put(16, bytes.size());
    put(24, text.size());
    put(32, xxh3(std::as_bytes(std::span(text))));
    bytes += text;
    put(40, bytes.size());
    put(56, xxh3(std::as_bytes(std::span(bytes.data(), 56))));
    return bytes;
  }

  void hostileIndexes_data() {
    QTest::addColumn<QString>("edit");
    QTest::addColumn<QString>("call");
    QTest::addColumn<QString>("message");
    const QString t = "{path}: tensor \"model.layers.0.mlp.down_proj.weight\"";
    QTest::newRow("no stream: decode") << "no stream" << "decode" << t + " (entquant) has no \"stream\" section";
    QTest::newRow("no stream: engine") << "no stream" << "linear" << t + " (entquant) has no \"stream\" section";
    QTest::newRow("shape overflows") << "huge shape" << "open"
                                     << t + ": shape [1099511627776,1099511627776] has too many elements";
    QTest::newRow("shape beyond the stream: decode") << "wide shape" << "decode"
                                                     << t + ": rANS stream holds 8192 symbols, expected 32768";
    QTest::newRow("shape beyond the stream: engine") << "wide shape" << "linear"
                                                     << t + ": rANS stream holds 8192 symbols, expected 32768";
    // A 35 KB stream of one-symbol segments (zero bits a code) that declares 2^40 codes, and a shape to match:
    // refused before anything is allocated.
    QTest::newRow("terabyte stream: decode") << "bomb" << "decode" << t + ": needs 3.0 TiB of memory, more than this machine has ({ram})";
    QTest::newRow("terabyte stream: engine") << "bomb" << "linear" << t + ": needs 1.0 TiB of memory, more than this machine has ({ram})";
  }
  void hostileIndexes() {
    QFETCH(QString, edit);
    QFETCH(QString, call);
    QFETCH(QString, message);
    const auto src = ModelSource::open(models() / "tiny-llama");
    const fs::path good = tmp_->path() / "good.eqz", bad = tmp_->path() / "hostile.eqz";
    compressModel(*src, good, CompressOptions{});
    const std::string name = "model.layers.0.mlp.down_proj.weight";  // [64, 128]
    std::string blob;
    if (edit == "bomb") {
      const std::uint64_t symbols = 1ull << 40;
      const std::uint32_t segmentSymbols = 0xFFFFFFFFu, segments = static_cast<std::uint32_t>(symbols / segmentSymbols + 1);
      codec::SymbolCounts counts{};
      counts[0] = 1;
      std::vector<std::byte> table;
      codec::FrequencyTable::normalize(counts).serialize(table);
      std::string header(24, '\0');
      header[0] = 1, header[1] = codec::kProbBits, header[2] = codec::kLanes;
      const std::uint32_t tableBytes = static_cast<std::uint32_t>(table.size());
      std::memcpy(header.data() + 4, &segmentSymbols, 4);
      std::memcpy(header.data() + 8, &symbols, 8);
      std::memcpy(header.data() + 16, &segments, 4);
      std::memcpy(header.data() + 20, &tableBytes, 4);
      blob = header + std::string(reinterpret_cast<const char*>(table.data()), table.size());
      blob.resize((blob.size() + 3) / 4 * 4, '\0');
      for (std::uint32_t k = 1; k <= segments; ++k) {
        const std::uint32_t end = k * 4 * codec::kLanes;  // each segment just its 32 lane states
        blob.append(reinterpret_cast<const char*>(&end), 4);
      }
      blob.append(std::size_t(segments) * 4 * codec::kLanes, '\0');
    }
    eqtest::writeFile(bad, resealed(good, [&](nlohmann::json& index, std::uint64_t blobAt) {
      for (auto& e : index["tensors"]) {
        if (e["name"] != name) continue;
        if (edit == "no stream") e["sections"].erase("stream");
        if (edit == "huge shape") e["shape"] = {1ull << 40, 1ull << 40};
        if (edit == "wide shape") e["shape"] = {64, 128 * 4};
        if (edit == "bomb") {
          e["shape"] = {64, (1ull << 40) / 64};
          e["sections"]["stream"] = EqzSection{blobAt, blob.size(), xxh3(std::as_bytes(std::span(blob)))}.toJson();
        }
      }
    }, blob));
    QString expected = message;
    expected.replace("{path}", eqtest::q(bad.string())).replace("{ram}", eqtest::q(formatBytes(physicalMemoryBytes())));
    try {
      const EqzFile f = EqzFile::open(bad);
      QVERIFY(call != "open");
      const EqzTensor* t = nullptr;
      for (const auto& e : f.tensors())
        if (e.name == name) t = &e;
      QVERIFY(t);
      if (call == "decode") {
        DType dtype;
        decodeTensor(f, *t, &pool_, dtype);
      } else {
        model::WeightSource::open(bad, pool_)->linear(name);
      }
      QFAIL("no error");
    } catch (const Error& e) {
      QCOMPARE(QString(e.what()), expected);
    }
  }

  // The index's informational members (tool, settings, summary) with other types than a writer gives them: inspect
  // shows them as absent instead of failing on them.
  void inspectToleratesOddInformationalMembers() {
    const auto src = ModelSource::open(models() / "tiny-llama");
    const fs::path good = tmp_->path() / "good.eqz", odd = tmp_->path() / "odd.eqz";
    compressModel(*src, good, CompressOptions{});
    eqtest::writeFile(odd, resealed(good, [](nlohmann::json& index, std::uint64_t) {
      index["tool"] = 5;
      index["settings"] = {1, 2};
      index["summary"] = "fast";
    }));
    const auto r = inspectEqz(EqzFile::open(odd));
    QVERIFY(r.compression["tool"] == "");
    QVERIFY(r.compression["settings"] == nlohmann::json::object());
    QVERIFY(r.compression["summary"] == nlohmann::json::object());
    QCOMPARE(r.tensors.size(), EqzFile::open(good).tensors().size());
  }

  void decompressRefusesAFullFolder() {
    const auto src = ModelSource::open(models() / "tiny-llama");
    compressModel(*src, tmp_->path() / "c.eqz", CompressOptions{});
    eqtest::writeFile(tmp_->path() / "busy/file.txt", "x");
    EQ_EXPECT_ERROR(decompressEqz(EqzFile::open(tmp_->path() / "c.eqz"), tmp_->path() / "busy", pool_),
                    Errc::InvalidArgument, (tmp_->path() / "busy").string() + ": exists and is not an empty folder");
  }

  void embeddedFilesComeBack() {
    writeSyntheticModel(tmp_->path() / "syn", 128, 256, 9);
    const auto src = ModelSource::open(tmp_->path() / "syn");
    compressModel(*src, tmp_->path() / "e.eqz", CompressOptions{});
    decompressEqz(EqzFile::open(tmp_->path() / "e.eqz"), tmp_->path() / "dec", pool_);
    QCOMPARE(eqtest::readText(tmp_->path() / "dec/tokenizer.json"), eqtest::readText(tmp_->path() / "syn/tokenizer.json"));
    QCOMPARE(eqtest::readText(tmp_->path() / "dec/config.json"), eqtest::readText(tmp_->path() / "syn/config.json"));
  }
};

QTEST_MAIN(TestPipeline)
#include "test_pipeline.moc"
