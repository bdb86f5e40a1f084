// Perplexity and generation on a tiny Llama with a real tokenizer, against HF transformers (float32):
// tests/data/golden/lm_golden.json made by tools/fixtures/make_lm_golden.py. Also streaming, stop strings,
// end-of-generation ids, .eqz models, cancel.
#include "common/thread_pool.h"
#include "format/archive.h"
#include "pipeline/compress.h"
#include "pipeline/lm.h"
#include "test_util.h"

#include <cmath>

using namespace eq;

namespace {
std::filesystem::path modelDir() { return eqtest::dataDir() / "models/tiny-llama-tok"; }
}  // namespace

class TestLm : public QObject {
  Q_OBJECT
  nlohmann::json golden_;
  ThreadPool pool_{2};
  std::string text_;

 private slots:
  void initTestCase() {
    golden_ = eqtest::readJson(eqtest::dataDir() / "golden/lm_golden.json");
    text_ = eqtest::readText(eqtest::dataDir() / "text/sample.txt");
  }

  void perplexityMatchesTransformers_data() {
    QTest::addColumn<int>("ctx");
    QTest::newRow("ctx 32") << 32;
    QTest::newRow("ctx 64") << 64;
  }
  void perplexityMatchesTransformers() {
    QFETCH(int, ctx);
    const auto ws = model::WeightSource::open(modelDir(), pool_);
    const auto lm = model::loadCausalLM(*ws, pool_);
    const auto tok = loadTokenizer(modelDir());
    PerplexityOptions o;
    o.ctx = ctx;
    const PerplexityResult r = perplexity(*lm, tok, text_, o);
    const auto& g = golden_["ppl"][std::to_string(ctx)];
    QCOMPARE(r.tokens, golden_["tokens"].get<std::int64_t>());
    QCOMPARE(r.windows, g["windows"].get<std::int64_t>());
    QCOMPARE(r.scored, g["scored"].get<std::int64_t>());
    QVERIFY2(std::fabs(r.ppl / g["ppl"].get<double>() - 1) < 1e-5, qPrintable(QString::number(r.ppl, 'g', 12)));
    o.maxWindows = 3;
    QCOMPARE(perplexity(*lm, tok, text_, o).windows, std::int64_t(3));
  }

  void greedyGenerationMatchesTransformers_data() {
    QTest::addColumn<int>("index");
    QTest::newRow("fox") << 0;
    QTest::newRow("numbers") << 1;
  }
  void greedyGenerationMatchesTransformers() {
    QFETCH(int, index);
    const auto& g = golden_["generate"][index];
    const auto ws = model::WeightSource::open(modelDir(), pool_);
    const auto lm = model::loadCausalLM(*ws, pool_);
    const auto tok = loadTokenizer(modelDir());
    const auto prompt = tok.encode(g["prompt"].get<std::string>(), true);
    QCOMPARE(prompt, g["prompt_ids"].get<std::vector<std::int32_t>>());
    GenerateOptions o;
    o.maxTokens = 32;
    o.eosIds = loadEosIds(modelDir());
    std::string streamed;
    o.onText = [&](const std::string& d) { streamed += d; };
    const GenerateResult r = generate(*lm, tok, prompt, o);
    QCOMPARE(r.ids, g["ids"].get<std::vector<std::int32_t>>());
    QCOMPARE(eqtest::q(r.text), eqtest::q(g["text"].get<std::string>()));
    QCOMPARE(streamed, r.text);
    QCOMPARE(eqtest::q(std::string(stopReasonName(r.stopReason))), QString("max_tokens"));
  }

  void stopStringsAndEos() {
    const auto ws = model::WeightSource::open(modelDir(), pool_);
    const auto lm = model::loadCausalLM(*ws, pool_);
    const auto tok = loadTokenizer(modelDir());
    const auto& g = golden_["generate"][0];
    const std::string full = g["text"].get<std::string>();
    const auto prompt = tok.encode(g["prompt"].get<std::string>(), true);
    GenerateOptions o;
    o.maxTokens = 32;
    o.stopStrings = {"89i"};  // spans tokens in the golden continuation
    std::string streamed;
    o.onText = [&](const std::string& d) { streamed += d; };
    GenerateResult r = generate(*lm, tok, prompt, o);
    QCOMPARE(eqtest::q(std::string(stopReasonName(r.stopReason))), QString("stop_string"));
    QCOMPARE(r.text, full.substr(0, full.find("89i")));
    QCOMPARE(streamed, r.text);
    // The third generated token as an end-of-generation id stops before it.
    o.stopStrings.clear();
    o.eosIds = {g["ids"][2].get<std::int32_t>()};
    r = generate(*lm, tok, prompt, o);
    QCOMPARE(eqtest::q(std::string(stopReasonName(r.stopReason))), QString("eos"));
    QCOMPARE(r.ids.size(), std::size_t(2));
    o.keepGoing = [] { return false; };
    EQ_EXPECT_ERROR(generate(*lm, tok, prompt, o), Errc::Cancelled, "generation cancelled");
  }

  void compressedModelRuns() {
    TempDir tmp("eq-test");
    const auto src = ModelSource::open(modelDir());
    compressModel(*src, tmp.path() / "m.eqz", CompressOptions{});
    const auto path = tmp.path() / "m.eqz";
    const auto ws = model::WeightSource::open(path, pool_);
    const auto lm = model::loadCausalLM(*ws, pool_);
    const auto tok = loadTokenizer(path);  // embedded in the .eqz
    QCOMPARE(loadEosIds(path), loadEosIds(modelDir()));
    PerplexityOptions o;
    o.ctx = 64;
    const PerplexityResult r = perplexity(*lm, tok, text_, o);
    QVERIFY(std::isfinite(r.ppl) && r.ppl > 1);
    qInfo("tiny random model: ppl %.1f original, %.1f at 3 bits", golden_["ppl"]["64"]["ppl"].get<double>(), r.ppl);
  }

  void errors() {
    const auto ws = model::WeightSource::open(modelDir(), pool_);
    const auto lm = model::loadCausalLM(*ws, pool_);
    const auto tok = loadTokenizer(modelDir());
    PerplexityOptions o;
    o.ctx = 64;
    EQ_EXPECT_ERROR(perplexity(*lm, tok, "too short", o), Errc::InvalidArgument,
                    "the text has 7 tokens, fewer than one window of 64");
    o.ctx = 100000;
    EQ_EXPECT_ERROR(perplexity(*lm, tok, text_, o), Errc::InvalidArgument,
                    "a context of 100000 tokens exceeds the model's 256");
    EQ_EXPECT_ERROR(loadTokenizer(eqtest::dataDir() / "models/tiny-llama"), Errc::NotFound,
                    (eqtest::dataDir() / "models/tiny-llama").string() + ": no tokenizer.json in the model folder");
  }
};

QTEST_MAIN(TestLm)
#include "test_lm.moc"
