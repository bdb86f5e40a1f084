// analyze -> plan -> compress (pipeline/analyze.h, plan.h, compress.h): the analysis' curves and statistics, plans
// and their JSON, that executing a plan writes the same file as the one-call job, that the predicted file size is
// honest (within 2 % at 2.1, 3 and 4 bits on the demo model), cancel, and the errors of plans that do not fit.
#include "format/eqz.h"
#include "pipeline/compress.h"
#include "pipeline/demo_model.h"
#include "test_util.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>

#include <cmath>
#include <cstring>

using namespace eq;
namespace fs = std::filesystem;

namespace {

// The sections of an .eqz file: everything between its preamble and its index (which hold the timings).
std::string sectionsOf(const fs::path& p) {
  const std::string b = eqtest::readText(p);
  std::uint64_t indexOffset = 0;
  std::memcpy(&indexOffset, b.data() + 16, 8);
  return b.substr(64, indexOffset - 64);
}

}  // namespace

class TestPlan : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  std::unique_ptr<ModelSource> demo_;
  Analysis analysis_;

  fs::path out(const std::string& name) const { return fs::path(tmp_.path().toStdString()) / name; }

 private slots:
  void initTestCase() {
    demo_ = ModelSource::open(demoModelPath());
    AnalyzeOptions o;
    o.threads = 2;
    analysis_ = analyzeModel(*demo_, o);
  }

  void analysisHasEveryCompressibleTensor() {
    QCOMPARE(analysis_.tensors.size(), demo_->tensors().size());
    int analyzed = 0;
    for (std::size_t i = 0; i < analysis_.tensors.size(); ++i) {
      const TensorAnalysis& t = analysis_.tensors[i];
      QCOMPARE(t.name, demo_->tensors()[i].info->name);
      QCOMPARE(t.analyzed(), t.compressible);
      if (!t.analyzed()) continue;
      ++analyzed;
      QCOMPARE(t.curve.size(), std::size_t(25));
      for (std::size_t k = 1; k < t.curve.size(); ++k) {  // lambda rises: fewer bits, more error
        QVERIFY(t.curve[k].bits <= t.curve[k - 1].bits);
        QVERIFY(t.curve[k].relMse >= t.curve[k - 1].relMse * (1 - 1e-9));
      }
      QVERIFY(t.stats && t.stats->absMax > 0 && t.stats->rms > 0 && t.stats->rms <= t.stats->absMax);
      std::uint64_t counted = 0;
      for (auto c : t.stats->histogram) counted += c;
      QCOMPARE(counted, static_cast<std::uint64_t>(t.stats->rowsSampled * t.cols));
      QVERIFY(t.depthSensitivity >= 1);
    }
    QCOMPARE(analyzed, 56);
    // README, chat template, config, generation config, held-out text, tokenizer, tokenizer config
    QCOMPARE(analysis_.embeddedFiles.size(), std::size_t(7));
  }

  void jsonRoundTrips() {
    const auto a = analysis_.toJson();
    QCOMPARE(Analysis::fromJson(nlohmann::json::parse(a.dump()), "a.json").toJson().dump(), a.dump());
    PlanSettings s;
    s.rules = {LayerRule::parse("layers\\.0\\.=keep"), LayerRule::parse("mlp=4")};
    const Plan plan = planBits(analysis_, s);
    const auto p = plan.toJson();
    const Plan back = Plan::fromJson(nlohmann::json::parse(p.dump()), "p.json");
    QCOMPARE(back.toJson().dump(), p.dump());
    EQ_EXPECT_SETTING_ERROR(Plan::fromJson(nlohmann::json{{"format", "x"}}, "p.json"), Errc::InvalidJson, Setting::Plan,
                            "p.json: not a plan (\"format\" is not \"entquant-plan\")");
    auto bad = nlohmann::json::parse(p.dump());
    bad["tensors"][3]["target"]["value"] = 9;
    EQ_EXPECT_SETTING_ERROR(Plan::fromJson(bad, "p.json"), Errc::InvalidArgument, Setting::Plan,
                            "p.json: tensor \"" + plan.tensors[3].name + "\": the target 9 is outside (0, 8] bits");
    bad = nlohmann::json::parse(p.dump());
    bad["tensors"][0].erase("numel");
    EQ_EXPECT_SETTING_ERROR(Plan::fromJson(bad, "p.json"), Errc::InvalidJson, Setting::Plan,
                            "p.json: tensors: \"numel\" is missing");
  }

  void rulesAndAllocation() {
    PlanSettings s;
    s.rules = {LayerRule::parse("mlp=4"), LayerRule::parse("layers\\.0\\.=keep")};  // later rules win
    const Plan plan = planBits(analysis_, s);
    double bits = 0, weights = 0;
    for (const auto& t : plan.tensors) {
      const TensorAnalysis& a = *analysis_.find(t.name);
      if (!a.compressible || t.name.find("layers.0.") != std::string::npos) {
        QVERIFY2(!t.compress, t.name.c_str());
        continue;
      }
      QVERIFY(t.compress && t.target);
      if (t.name.find("mlp") != std::string::npos) {
        QVERIFY(t.ruled);
        QCOMPARE(t.target->value, 4.0);
        continue;
      }
      QVERIFY(t.sensitivity > 0);  // depth allocation
      bits += t.target->value * double(t.numel);
      weights += double(t.numel);
      QVERIFY(t.predictedRelMse && *t.predictedRelMse > 0);
    }
    QVERIFY(std::fabs(bits / weights - 3.0) < 1e-9);  // the same total as uniform
    // a lambda target is uniform, and the allocation needs curves
    PlanSettings lambda;
    lambda.target = {quant::RateTarget::Mode::Lambda, 14.5};
    lambda.objective = quant::Objective::Paper;
    for (const auto& t : planBits(analysis_, lambda).tensors) QVERIFY(t.sensitivity == 0);
    AnalyzeOptions headersOnly;
    headersOnly.include = [](const std::string&) { return false; };
    const Analysis bare = analyzeModel(*demo_, headersOnly);
    const std::string first = bare.tensors[2].name;
    EQ_EXPECT_ERROR(planBits(bare, PlanSettings{}), Errc::InvalidArgument,
                    demo_->input().string() + ": tensor \"" + first +
                        "\" has no rate-distortion curve; the depth allocation needs one");
    PlanSettings uniform;
    uniform.allocation = Allocation::Uniform;
    QCOMPARE(planBits(bare, uniform).tensors.size(), demo_->tensors().size());
  }

  // The one-call job and a plan executed later (also through JSON) write the same sections.
  void executingAPlanWritesTheSameFile() {
    CompressOptions o;
    o.threads = 2;
    o.layerRules = {LayerRule::parse("v_proj=4")};
    compressModel(*demo_, out("direct.eqz"), o);
    const Plan plan = planBits(analysis_, o.planSettings());
    const Plan viaJson = Plan::fromJson(nlohmann::json::parse(plan.toJson().dump()), "p.json");
    const CompressSummary s = compressModel(*demo_, viaJson, out("planned.eqz"), o);
    QVERIFY(sectionsOf(out("direct.eqz")) == sectionsOf(out("planned.eqz")));
    QCOMPARE(s.predictedBytes, plan.predictedFileBytes);
    // a plan for another model, or one whose tensor cannot be compressed
    const auto qwen = ModelSource::open(eqtest::dataDir() / "models/tiny-qwen2");
    EQ_EXPECT_SETTING_ERROR(compressModel(*qwen, plan, out("x.eqz"), o), Errc::InvalidArgument, Setting::Plan,
                            "the plan does not fit " + qwen->input().string() + ": it lists 74 tensors, the model has 26");
    Plan wrong = plan;
    wrong.tensors[0].compress = true;  // the embedding
    EQ_EXPECT_SETTING_ERROR(compressModel(*demo_, wrong, out("x.eqz"), o), Errc::InvalidArgument, Setting::Plan,
                            "the plan does not fit " + demo_->input().string() + ": tensor \"" + plan.tensors[0].name +
                                "\" cannot be compressed");
    QVERIFY(!fs::exists(out("x.eqz")));
  }

  // The honest prediction: the file the plan predicts, within 2 % of the one compress writes.
  void predictedSizeIsHonest_data() {
    QTest::addColumn<double>("bits");
    QTest::addColumn<QString>("method");
    for (double b : {2.1, 3.0, 4.0}) QTest::newRow(qPrintable(QString("%1 bits").arg(b))) << b << "entquant";
    QTest::newRow("rtn4") << 4.0 << "rtn4";
  }
  void predictedSizeIsHonest() {
    QFETCH(double, bits);
    QFETCH(QString, method);
    CompressOptions o;
    o.threads = 2;
    o.target.value = bits;
    o.method = *parseMethod(method.toStdString());
    const Plan plan = planBits(analysis_, o.planSettings());
    const CompressSummary s = compressModel(*demo_, plan, out("size.eqz"), o);
    const double ratio = double(plan.predictedFileBytes) / double(s.outputBytes);
    qInfo("%s at %.1f bits: predicted %llu, written %llu bytes (%+.2f %%)", qPrintable(method), bits,
          static_cast<unsigned long long>(plan.predictedFileBytes), static_cast<unsigned long long>(s.outputBytes),
          100 * (ratio - 1));
    QVERIFY2(std::fabs(ratio - 1) < 0.02, qPrintable(QString::number(ratio)));
  }

  void analysisCancels() {
    AnalyzeOptions o;
    std::vector<std::uint64_t> done;
    o.keepGoing = [&] { return done.size() < 2; };  // cancelled while the third tensor is analyzed
    o.progress = [&](const Progress& p) {
      QCOMPARE(p.phase, Phase::Analyze);
      if (p.itemDone) done.push_back(p.done);
    };
    EQ_EXPECT_ERROR(analyzeModel(*demo_, o), Errc::Cancelled, "analysis cancelled");
    QCOMPARE(done, (std::vector<std::uint64_t>{1, 2}));
  }

  void cliPlanThenCompress() {
    const QString model = eqtest::q(demoModelPath().string());
    const QString planFile = QString::fromStdString(out("cli.plan.json").string());
    auto r = eqtest::runCli({"plan", model, "--bits", "2.5", "-o", planFile, "--threads", "2"});
    QCOMPARE(r.code, 0);
    QVERIFY2(r.out.contains("Predicted"), r.out.constData());
    r = eqtest::runCli({"compress", model, "--plan", planFile, "-o", eqtest::q(out("cli-plan.eqz").string()), "--json",
                        "--threads", "2"});
    QCOMPARE(r.code, 0);
    r = eqtest::runCli({"compress", model, "--bits", "2.5", "-o", eqtest::q(out("cli-direct.eqz").string()), "--quiet",
                        "--threads", "2"});
    QCOMPARE(r.code, 0);
    QVERIFY(sectionsOf(out("cli-plan.eqz")) == sectionsOf(out("cli-direct.eqz")));
    r = eqtest::runCli({"compress", model, "--plan", planFile, "--bits", "3", "-o", "x.eqz"});
    QCOMPARE(r.code, 2);
    r = eqtest::runCli({"analyze", model, "--json", "--threads", "2"});
    QCOMPARE(r.code, 0);
    QCOMPARE(QJsonDocument::fromJson(r.out).object()["format"].toString(), QString("entquant-analysis"));
  }
};

QTEST_MAIN(TestPlan)
#include "test_plan.moc"
