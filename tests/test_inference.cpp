// The CPU inference engine against HF transformers (float32 logits of every position for the tiny fixtures,
// tests/data/golden/logits_golden.json), KV-cache decoding equal to a full prefill, .eqz weights (FP8 codes)
// against their decompressed bf16 folder, and the error paths.
#include "common/cpu_isa.h"
#include "common/thread_pool.h"
#include "format/archive.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "model/causal_lm.h"
#include "pipeline/compress.h"
#include "pipeline/eqz_tools.h"
#include "pipeline/lm.h"
#include "test_util.h"

#include <algorithm>
#include <cmath>

using namespace eq;
using namespace eq::model;

namespace {

double relL2(const float* a, const float* b, std::size_t n) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < n; ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

std::int64_t argmax(const float* row, std::int64_t n) { return std::max_element(row, row + n) - row; }

}  // namespace

class TestInference : public QObject {
  Q_OBJECT
  nlohmann::json golden_;
  ThreadPool pool_{2};
  std::vector<std::int32_t> ids_;

  // Loading the model in `folder` and running three tokens fails with `code` and `message` ({path}: the folder).
  void expectRefused(const std::filesystem::path& folder, const QString& message, Errc code) {
    try {
      const auto ws = WeightSource::open(folder, pool_);
      loadCausalLM(*ws, pool_)->forward(std::span(ids_).first(3));
      QFAIL("no error");
    } catch (const Error& e) {
      QCOMPARE(QString(e.what()), QString(message).replace("{path}", eqtest::q(folder.string())));
      QCOMPARE(e.code(), code);
    }
  }

 private slots:
  void initTestCase() {
    golden_ = eqtest::readJson(eqtest::dataDir() / "golden/logits_golden.json");
    ids_ = golden_["ids"].get<std::vector<std::int32_t>>();
  }

  void matchesTransformers_data() {
    QTest::addColumn<QString>("name");
    for (const char* m : {"tiny-llama", "tiny-llama-sharded", "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "tiny-phi3",
                          "tiny-mixtral", "tiny-gemma", "tiny-gemma2"})
      QTest::newRow(m) << QString(m);
  }
  // How far a prompt's logits may be from a float32 reference: the float32 kernels' rounding, or, where prefill
  // runs on the AMX tiles, also the activations' bf16 parts (up to 2^-16 of each product, linear_amx.cpp).
  static double prefillTolerance(double float32) { return kernelIsa() == KernelIsa::Amx ? 3e-5 : float32; }

  void matchesTransformers() {
    QFETCH(QString, name);
    const auto& g = golden_["models"][name.toStdString()];
    const auto ws = WeightSource::open(eqtest::dataDir() / "models" / name.toStdString(), pool_);
    const auto lm = loadCausalLM(*ws, pool_);
    const auto logits = lm->forward(ids_);
    const std::int64_t v = lm->vocabSize();
    const auto argmaxes = g["argmax"].get<std::vector<std::int64_t>>();
    for (std::size_t i = 0; i < ids_.size(); ++i) {
      const auto ref = g["logits"][i].get<std::vector<float>>();
      QVERIFY2(relL2(logits.data() + i * v, ref.data(), ref.size()) < prefillTolerance(1e-5),
               qPrintable(QString("position %1: rel L2 %2").arg(i).arg(relL2(logits.data() + i * v, ref.data(), ref.size()))));
      QCOMPARE(argmax(logits.data() + i * v, v), argmaxes[i]);
    }
  }

  // Perplexity (ENTQUANT.md section 8, windows of 32) and 32 greedy tokens for every family, against transformers
  // (tests/data/golden/family_golden.json, tools/fixtures/make_family_golden.py).
  void perplexityAndGreedyMatchTransformers_data() { matchesTransformers_data(); }
  void perplexityAndGreedyMatchTransformers() {
    QFETCH(QString, name);
    const auto family = eqtest::readJson(eqtest::dataDir() / "golden/family_golden.json");
    const auto& g = family["models"][name.toStdString()];
    const auto ws = WeightSource::open(eqtest::dataDir() / "models" / name.toStdString(), pool_);
    const auto lm = loadCausalLM(*ws, pool_);
    const auto ids = g["ids"].get<std::vector<std::int32_t>>();
    PerplexityOptions o;
    o.ctx = family["ctx"].get<int>();
    const PerplexityResult r = perplexityOfIds(*lm, ids, o);
    QCOMPARE(r.scored, g["scored"].get<std::int64_t>());
    QVERIFY2(std::fabs(r.ppl / g["ppl"].get<double>() - 1) < 1e-5, qPrintable(QString::number(r.ppl, 'g', 10)));
    std::vector<std::int32_t> seq(ids.begin(), ids.begin() + 8), greedy;
    lm->reset();
    auto logits = lm->forward(seq);
    const std::int64_t v = lm->vocabSize();
    for (int step = 0; step < 32; ++step) {
      const auto next = static_cast<std::int32_t>(argmax(logits.data() + logits.size() - v, v));
      greedy.push_back(next);
      logits = lm->forward(std::span(&greedy.back(), 1));
    }
    QCOMPARE(greedy, g["greedy"].get<std::vector<std::int32_t>>());
  }

  void cachedDecodingEqualsPrefill_data() {
    QTest::addColumn<QString>("name");
    QTest::newRow("llama") << "tiny-llama";
    QTest::newRow("qwen3") << "tiny-qwen3";
    QTest::newRow("gemma2") << "tiny-gemma2";
    QTest::newRow("mixtral") << "tiny-mixtral";
  }
  void cachedDecodingEqualsPrefill() {
    QFETCH(QString, name);
    const auto ws = WeightSource::open(eqtest::dataDir() / "models" / name.toStdString(), pool_);
    const auto lm = loadCausalLM(*ws, pool_);
    const auto full = lm->forward(ids_);
    lm->reset();
    const std::int64_t v = lm->vocabSize();
    std::vector<float> stepwise = lm->forward(std::span(ids_).first(12));
    for (std::size_t i = 12; i < ids_.size(); ++i) {
      const auto one = lm->forward(std::span(ids_).subspan(i, 1));
      stepwise.insert(stepwise.end(), one.begin(), one.end());
    }
    QCOMPARE(lm->position(), std::int64_t(ids_.size()));
    double worst = 0;
    for (std::size_t i = 0; i < ids_.size(); ++i)
      worst = std::max(worst, relL2(stepwise.data() + i * v, full.data() + i * v, std::size_t(v)));
    qInfo("%s kernels: worst rel L2 %.3g", kernelIsaName(kernelIsa()).data(), worst);
    QVERIFY2(worst < prefillTolerance(1e-6), qPrintable(QString("rel L2 %1").arg(worst)));
  }

  void eqzRunsLikeItsDecompressedWeights() {
    TempDir tmp("eq-test");
    const auto src = ModelSource::open(eqtest::dataDir() / "models/tiny-llama");
    CompressOptions o;
    o.target = {quant::RateTarget::Mode::Bits, 4.0};
    compressModel(*src, tmp.path() / "m.eqz", o);
    decompressEqz(EqzFile::open(tmp.path() / "m.eqz"), tmp.path() / "dec", pool_);
    const auto a = loadCausalLM(*WeightSource::open(tmp.path() / "m.eqz", pool_), pool_)->forward(ids_);
    const auto b = loadCausalLM(*WeightSource::open(tmp.path() / "dec", pool_), pool_)->forward(ids_);
    // Codes are multiplied with their row scale after the dot product instead of rounding each weight to bf16
    // first, so the two differ by rounding only.
    QVERIFY(relL2(a.data(), b.data(), a.size()) < 1e-2);
    const auto ws = WeightSource::open(tmp.path() / "m.eqz", pool_);
    const auto lm = loadCausalLM(*ws, pool_);
    QVERIFY(lm->weightBytes() < loadCausalLM(*WeightSource::open(tmp.path() / "dec", pool_), pool_)->weightBytes());
  }

  void compressedDecodingEqualsPrefill_data() {
    QTest::addColumn<QString>("format");
    QTest::newRow("fp8") << "fp8";
    QTest::newRow("int8") << "int8";
  }
  void compressedDecodingEqualsPrefill() {
    // One token at a time uses the fused code x activation kernels; a prefill decodes rows first. Same numbers.
    QFETCH(QString, format);
    TempDir tmp("eq-test");
    const auto src = ModelSource::open(eqtest::dataDir() / "models/tiny-qwen3");
    CompressOptions o;
    o.format = *quant::parseCodeFormat(format.toStdString());
    compressModel(*src, tmp.path() / "m.eqz", o);
    const auto ws = WeightSource::open(tmp.path() / "m.eqz", pool_);
    const auto lm = loadCausalLM(*ws, pool_);
    const auto full = lm->forward(ids_);
    lm->reset();
    const std::int64_t v = lm->vocabSize();
    for (std::size_t i = 0; i < ids_.size(); ++i) {
      const auto one = lm->forward(std::span(ids_).subspan(i, 1));
      QVERIFY(relL2(one.data(), full.data() + i * v, std::size_t(v)) < 1e-5);
    }
  }

  void errors() {
    TempDir tmp("eq-test");
    std::filesystem::copy_file(eqtest::dataDir() / "models/tiny-llama/model.safetensors", tmp.path() / "model.safetensors");
    auto cfg = eqtest::readJson(eqtest::dataDir() / "models/tiny-llama/config.json");
    cfg["model_type"] = "falcon";
    cfg["architectures"] = {"FalconForCausalLM"};
    eqtest::writeFile(tmp.path() / "config.json", cfg.dump());
    const auto falcon = WeightSource::open(tmp.path(), pool_);
    EQ_EXPECT_ERROR(loadCausalLM(*falcon, pool_), Errc::Unsupported,
                    tmp.path().string() + ": unsupported architecture FalconForCausalLM (supported: Llama, Mistral, "
                    "Qwen2, Qwen3, Phi-3, Mixtral, Gemma, Gemma 2)");
    const auto ws = WeightSource::open(eqtest::dataDir() / "models/tiny-llama", pool_);
    LoadOptions lo;
    lo.contextLength = 8;
    const auto lm = loadCausalLM(*ws, pool_, lo);
    EQ_EXPECT_ERROR(lm->forward(ids_), Errc::InvalidArgument,
                    "context full: 0 tokens in the cache + 20 new exceed the context length 8");
    const std::vector<std::int32_t> bad{1, 256};
    EQ_EXPECT_ERROR(lm->forward(bad), Errc::InvalidArgument, "token id 256 is outside the vocabulary (0..255)");
    EQ_EXPECT_ERROR(lm->forward(std::span(ids_).first(3), [] { return false; }), Errc::Cancelled, "generation cancelled");
    QCOMPARE(lm->position(), std::int64_t(0));  // a failed or cancelled call leaves the cache as it was
    lm->beginBatch(2);
    EQ_EXPECT_ERROR(lm->forwardBatch(std::span(ids_).first(3)), Errc::InvalidArgument,
                    "a batch of 2 sequences was begun, 3 tokens were given");
    for (int step = 0; step < 8; ++step) lm->forwardBatch(std::span(ids_).first(2));
    EQ_EXPECT_ERROR(lm->forwardBatch(std::span(ids_).first(2)), Errc::InvalidArgument,
                    "context full: 8 tokens in each sequence's cache");
    EQ_EXPECT_ERROR(lm->beginBatch(0), Errc::InvalidArgument, "a batch needs at least one sequence, got 0");
  }

  // Configs that would send the engine out of bounds (found by fuzzing, tests/fuzz fuzz_engine): refused when the
  // model is built, naming the folder. `patch` replaces top-level keys of the model's config.json.
  void impossibleConfigs_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("patch");
    QTest::addColumn<QString>("message");
    QTest::newRow("rotating past the head") << "tiny-phi3"
        << R"({"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 2.0}})"
        << "{path}: partial_rotary_factor must be in (0, 1] (got 2)";
  }
  void impossibleConfigs() {
    QFETCH(QString, model);
    QFETCH(QString, patch);
    QFETCH(QString, message);
    TempDir tmp("eq-test");
    const auto from = eqtest::dataDir() / "models" / model.toStdString();
    std::filesystem::copy_file(from / "model.safetensors", tmp.path() / "model.safetensors");
    auto cfg = eqtest::readJson(from / "config.json");
    const auto changes = nlohmann::json::parse(patch.toStdString());
    for (const auto& [key, value] : changes.items()) cfg[key] = value;
    eqtest::writeFile(tmp.path() / "config.json", cfg.dump());
    expectRefused(tmp.path(), message, Errc::BadConfig);
  }

  // A checkpoint whose tensors disagree with config.json or with each other (one tensor replaced by zeros of
  // another shape): refused when the model is built, naming the tensor, instead of the kernels reading out of bounds.
  void mismatchedTensors_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("tensor");
    QTest::addColumn<QList<qint64>>("shape");
    QTest::addColumn<QString>("message");
    QTest::newRow("narrow down_proj") << "tiny-llama" << "model.layers.0.mlp.down_proj.weight" << QList<qint64>{64, 64}
        << "{path}: model.layers.0.mlp.down_proj.weight is [64, 64], config.json implies [64, 128]";
    QTest::newRow("wide up_proj") << "tiny-llama" << "model.layers.1.mlp.up_proj.weight" << QList<qint64>{256, 64}
        << "{path}: model.layers.1.mlp.up_proj.weight is [256, 64], config.json implies [128, 64]";
    QTest::newRow("short norm") << "tiny-llama" << "model.layers.1.input_layernorm.weight" << QList<qint64>{32}
        << "{path}: model.layers.1.input_layernorm.weight has 32 values, config.json implies 64";
    QTest::newRow("short final norm") << "tiny-llama" << "model.norm.weight" << QList<qint64>{63}
        << "{path}: model.norm.weight has 63 values, config.json implies 64";
    QTest::newRow("lm_head") << "tiny-mixtral" << "lm_head.weight" << QList<qint64>{256, 32}
        << "{path}: lm_head.weight is [256, 32], config.json implies [256, 64]";
    QTest::newRow("no experts") << "tiny-mixtral" << "model.layers.0.block_sparse_moe.gate.weight" << QList<qint64>{0, 64}
        << "{path}: model.layers.0.block_sparse_moe.gate.weight has no rows (no experts)";
    QTest::newRow("expert w2") << "tiny-mixtral" << "model.layers.0.block_sparse_moe.experts.2.w2.weight"
        << QList<qint64>{64, 96}
        << "{path}: model.layers.0.block_sparse_moe.experts.2.w2.weight is [64, 96], config.json implies [64, 128]";
    QTest::newRow("fused qkv") << "tiny-phi3" << "model.layers.0.self_attn.qkv_proj.weight" << QList<qint64>{100, 64}
        << "{path}: model.layers.0.self_attn.qkv_proj.weight is [100, 64], config.json implies [128, 64]";
    QTest::newRow("bias") << "tiny-qwen2" << "model.layers.0.self_attn.q_proj.bias" << QList<qint64>{10}
        << "{path}: the bias of model.layers.0.self_attn.q_proj.weight has 10 values for 64 rows";
  }
  void mismatchedTensors() {
    QFETCH(QString, model);
    QFETCH(QString, tensor);
    QFETCH(QList<qint64>, shape);
    QFETCH(QString, message);
    TempDir tmp("eq-test");
    const auto from = eqtest::dataDir() / "models" / model.toStdString();
    std::filesystem::copy_file(from / "config.json", tmp.path() / "config.json");
    const auto original = SafetensorsFile::open(from / "model.safetensors");
    std::vector<TensorSpec> specs;
    for (const auto& t : original.tensors())
      specs.push_back({t.name, t.dtype, t.name == tensor.toStdString() ? std::vector<std::int64_t>(shape.begin(), shape.end())
                                                                        : t.shape});
    SafetensorsWriter w(tmp.path() / "model.safetensors", specs);
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (specs[i].name == tensor.toStdString()) w.append(std::vector<std::byte>(specs[i].bytes()));
      else w.append(original.data(original.tensors()[i]));
    }
    w.finish();
    expectRefused(tmp.path(), message, Errc::ShapeMismatch);
  }

  // Sequences in lockstep (forwardBatch, how calibration writes its texts) get the logits each would get alone,
  // step by step, past Gemma 2's sliding window of 32; a sequence's logits do not depend on how many share its
  // batch (bit for bit); and the single-sequence cache is left as it was.
  void batchedSequencesMatchSingleOnes_data() {
    QTest::addColumn<QString>("name");
    for (const char* m : {"tiny-llama", "tiny-qwen3", "tiny-phi3", "tiny-gemma2", "tiny-mixtral"}) QTest::newRow(m) << QString(m);
  }
  void batchedSequencesMatchSingleOnes() {
    QFETCH(QString, name);
    const auto ws = WeightSource::open(eqtest::dataDir() / "models" / name.toStdString(), pool_);
    const auto lm = loadCausalLM(*ws, pool_);
    const std::int64_t v = lm->vocabSize(), steps = 40, n = 3;
    std::vector<std::vector<std::int32_t>> seqs(n);
    for (std::int64_t b = 0; b < n; ++b)
      for (std::int64_t t = 0; t < steps; ++t)  // not 0: the padding token, whose embedding is all zero
        seqs[b].push_back(static_cast<std::int32_t>(1 + (b * 71 + t * 37 + t * t) % (v - 1)));
    const auto before = lm->forward(std::span(ids_).first(5));
    std::vector<std::vector<float>> three, two;  // per step: [n][vocab], [2][vocab]
    lm->beginBatch(n);
    for (std::int64_t t = 0; t < steps; ++t) {
      std::vector<std::int32_t> step;
      for (std::int64_t b = 0; b < n; ++b) step.push_back(seqs[b][t]);
      three.push_back(lm->forwardBatch(step));
    }
    lm->beginBatch(2);
    for (std::int64_t t = 0; t < steps; ++t) two.push_back(lm->forwardBatch(std::vector<std::int32_t>{seqs[0][t], seqs[1][t]}));
    for (std::int64_t t = 0; t < steps; ++t)
      QVERIFY(std::equal(two[t].begin(), two[t].end(), three[t].begin()));
    for (std::int64_t b = 0; b < n; ++b) {
      lm->reset();
      for (std::int64_t t = 0; t < steps; ++t) {
        const auto alone = lm->forward(std::span(&seqs[b][t], 1));
        const double e = relL2(three[t].data() + b * v, alone.data(), static_cast<std::size_t>(v));
        QVERIFY2(e < 1e-5, qPrintable(QString("sequence %1, step %2: rel L2 %3").arg(b).arg(t).arg(e)));
      }
    }
    lm->reset();
    QCOMPARE(lm->forward(std::span(ids_).first(5)), before);
  }
};

QTEST_MAIN(TestInference)
#include "test_inference.moc"
