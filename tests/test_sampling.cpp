// Sampling: greedy, temperature, top-k, top-p, min-p, repetition penalty as HF applies them, seeded draws that
// follow the distribution, and stop strings across token boundaries.
#include "test_util.h"
#include "text/sampling.h"

#include <cmath>

using namespace eq::text;

class TestSampling : public QObject {
  Q_OBJECT

 private slots:
  void greedyIsArgmax() {
    Sampler s({0.0f});
    const std::vector<float> logits{0.1f, 2.0f, -1.0f, 1.9f};
    QCOMPARE(s.sample(logits, {}), 1);
  }

  void distributions_data() {
    QTest::addColumn<float>("temperature");
    QTest::addColumn<int>("topK");
    QTest::addColumn<float>("topP");
    QTest::addColumn<float>("minP");
    QTest::addColumn<QList<double>>("expected");
    // logits log(0.5), log(0.25), log(0.15), log(0.1)
    QTest::newRow("plain") << 1.0f << 0 << 1.0f << 0.0f << QList<double>{0.5, 0.25, 0.15, 0.1};
    QTest::newRow("top-k 2") << 1.0f << 2 << 1.0f << 0.0f << QList<double>{2.0 / 3, 1.0 / 3, 0, 0};
    QTest::newRow("top-p 0.7") << 1.0f << 0 << 0.7f << 0.0f << QList<double>{2.0 / 3, 1.0 / 3, 0, 0};
    QTest::newRow("top-k 3 then top-p 0.7") << 1.0f << 3 << 0.7f << 0.0f << QList<double>{2.0 / 3, 1.0 / 3, 0, 0};
    QTest::newRow("top-k 3 and min-p 0.25") << 1.0f << 3 << 1.0f << 0.25f << QList<double>{0.5 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0};
    QTest::newRow("top-p 0.75 reached exactly") << 1.0f << 0 << 0.75f << 0.0f << QList<double>{2.0 / 3, 1.0 / 3, 0, 0};
    QTest::newRow("min-p 0.25") << 1.0f << 0 << 1.0f << 0.25f << QList<double>{0.5 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0};
    QTest::newRow("temperature 0.5") << 0.5f << 0 << 1.0f << 0.0f
                                     << QList<double>{0.25 / 0.345, 0.0625 / 0.345, 0.0225 / 0.345, 0.01 / 0.345};
  }
  void distributions() {
    QFETCH(float, temperature);
    QFETCH(int, topK);
    QFETCH(float, topP);
    QFETCH(float, minP);
    QFETCH(QList<double>, expected);
    const std::vector<float> logits{std::log(0.5f), std::log(0.25f), std::log(0.15f), std::log(0.1f)};
    Sampler s({temperature, topK, topP, minP});
    const auto p = s.distribution(logits, {});
    for (int i = 0; i < 4; ++i) QVERIFY2(std::fabs(p[i] - expected[i]) < 1e-6, qPrintable(QString("%1: %2").arg(i).arg(p[i])));
  }

  // Equal logits: top-k keeps the lowest ids, with top-p too (the order the truncations see is by logit, then id).
  void tiesKeepTheLowestIds() {
    const std::vector<float> logits{1.0f, 2.0f, 1.0f, 1.0f, 1.0f};
    const auto k2 = Sampler({1.0f, 2, 1.0f, 0.0f}).distribution(logits, {});
    QVERIFY(k2[1] > 0 && k2[0] > 0 && k2[2] == 0 && k2[3] == 0 && k2[4] == 0);
    const auto k3p = Sampler({1.0f, 3, 0.99f, 0.0f}).distribution(logits, {});
    QVERIFY(k3p[1] > 0 && k3p[0] > 0 && k3p[2] > 0 && k3p[3] == 0 && k3p[4] == 0);
    const auto p = Sampler({1.0f, 0, 0.5f, 0.0f}).distribution(logits, {});  // 2.0 alone has mass 0.40: one tie more
    QVERIFY(p[1] > 0 && p[0] > 0 && p[2] == 0 && p[3] == 0 && p[4] == 0);
  }

  void drawsFollowTheDistribution() {
    const std::vector<float> logits{std::log(0.5f), std::log(0.25f), std::log(0.15f), std::log(0.1f)};
    Sampler s({1.0f, 0, 1.0f, 0.0f, 1.0f, 42});
    std::vector<int> count(4, 0);
    const int n = 200000;
    for (int i = 0; i < n; ++i) ++count[s.sample(logits, {})];
    const double expected[] = {0.5, 0.25, 0.15, 0.1};
    for (int i = 0; i < 4; ++i) QVERIFY(std::fabs(count[i] / double(n) - expected[i]) < 0.005);
  }

  void seedsRepeat() {
    const std::vector<float> logits{0.0f, 0.1f, 0.2f, 0.3f, 0.4f};
    Sampler a({1.0f, 0, 1.0f, 0.0f, 1.0f, 7}), b({1.0f, 0, 1.0f, 0.0f, 1.0f, 7});
    for (int i = 0; i < 100; ++i) QCOMPARE(a.sample(logits, {}), b.sample(logits, {}));
  }

  void repetitionPenalty() {
    // HF: seen tokens with positive logits are divided by the penalty, negative ones multiplied.
    const std::vector<float> logits{2.0f, 1.5f, -1.0f};
    Sampler s({0.0f, 0, 1.0f, 0.0f, 1.5f});
    const std::vector<std::int32_t> history{0};
    QCOMPARE(s.sample(logits, history), 1);  // 2.0 / 1.5 < 1.5
    Sampler t({1.0f, 0, 1.0f, 0.0f, 2.0f});
    const std::vector<std::int32_t> h2{2};
    const auto p = t.distribution(logits, h2);
    const double z = std::exp(2.0) + std::exp(1.5) + std::exp(-2.0);
    QVERIFY(std::fabs(p[2] - std::exp(-2.0) / z) < 1e-9);
  }

  void stopStrings_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<int>("found");
    QTest::addColumn<int>("safe");
    QTest::newRow("none") << "Hello world" << -1 << 11;
    QTest::newRow("whole") << "Hello<|end|> more" << 5 << 17;
    QTest::newRow("partial tail held back") << "Hello<|en" << -1 << 5;
    QTest::newRow("second stop string") << "a\nUser: b" << 1 << 9;
    QTest::newRow("tail of a different stop") << "a\nUse" << -1 << 1;
  }
  void stopStrings() {
    QFETCH(QString, text);
    QFETCH(int, found);
    QFETCH(int, safe);
    const StopStrings stops({"<|end|>", "\nUser:"});
    const std::string t = text.toStdString();
    const std::size_t f = stops.find(t);
    QCOMPARE(f == std::string::npos ? -1 : int(f), found);
    QCOMPARE(int(stops.safeLength(t)), safe);
  }
};

QTEST_MAIN(TestSampling)
#include "test_sampling.moc"
