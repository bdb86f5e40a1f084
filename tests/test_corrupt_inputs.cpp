// The corpus of corrupt inputs in tests/data/corrupt (made by tools/fixtures/make_corrupt.py): each must fail to
// open with its exact error code and message (or a message that starts so, where the rest depends on the machine). CI also runs this under AddressSanitizer + UBSan.
#include "model/model_source.h"
#include "test_util.h"

using namespace eq;

class TestCorruptInputs : public QObject {
  Q_OBJECT

 private slots:
  void corpus_data() {
    QTest::addColumn<QString>("input");
    QTest::addColumn<QString>("code");
    QTest::addColumn<QString>("message");
    QTest::addColumn<bool>("prefix");
    const auto dir = eqtest::dataDir() / "corrupt";
    const auto expected = eqtest::readJson(dir / "expected.json");
    QVERIFY(expected.size() >= 25);
    for (const auto& [name, e] : expected.items()) {
      const std::string path = (dir / name).string();
      std::string message = e["message"].get<std::string>();
      message.replace(message.find("{path}"), 6, path);
      QTest::newRow(name.c_str()) << eqtest::q(path) << eqtest::q(e["code"].get<std::string>())
                                  << eqtest::q(message) << e.value("prefix", false);
    }
  }
  void corpus() {
    QFETCH(QString, input);
    QFETCH(QString, code);
    QFETCH(QString, message);
    QFETCH(bool, prefix);
    try {
      ModelSource::open(input.toStdString());
      QFAIL("opened without an error");
    } catch (const Error& e) {
      QCOMPARE(prefix ? QString(e.what()).left(message.size()) : QString(e.what()), message);
      QCOMPARE(QString(errcName(e.code())), code);
    }
  }
};

QTEST_MAIN(TestCorruptInputs)
#include "test_corrupt_inputs.moc"
