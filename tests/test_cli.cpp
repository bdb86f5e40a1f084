// The entquant CLI contract: exit codes (0 ok, 1 failure, 2 usage), --json printing exactly one JSON object, exact
// parameter counts of the fixtures, and one clear sentence on stderr naming the file on failure.
#include "test_util.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>

namespace {

struct Run {
  int code = -1;
  QByteArray out, err;
};

Run entquant(const QStringList& args) {
  QProcess p;
  p.start(EQ_CLI, args);
  p.waitForFinished(60000);
  return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
          p.readAllStandardError()};
}

QString models() { return QString::fromStdString((eqtest::dataDir() / "models").string()); }

}  // namespace

class TestCli : public QObject {
  Q_OBJECT
  nlohmann::json expected_;

 private slots:
  void initTestCase() { expected_ = eqtest::readJson(eqtest::dataDir() / "models/expected.json"); }

  void inspectJson_data() {
    QTest::addColumn<QString>("name");
    for (const auto& [name, m] : expected_["models"].items()) QTest::newRow(name.c_str()) << eqtest::q(name);
  }
  void inspectJson() {
    QFETCH(QString, name);
    const auto& m = expected_["models"][name.toStdString()];
    const Run r = entquant({"inspect", models() + "/" + name, "--json"});
    QCOMPARE(r.code, 0);
    QVERIFY(r.err.isEmpty());
    QJsonParseError pe;
    const QJsonDocument doc = QJsonDocument::fromJson(r.out, &pe);
    QVERIFY2(pe.error == QJsonParseError::NoError, qPrintable(pe.errorString()));
    QVERIFY(doc.isObject());
    const QJsonObject o = doc.object();
    QCOMPARE(o["architecture"].toString(), eqtest::q(m["architecture"].get<std::string>()));
    QCOMPARE(o["parameters"]["total"].toInteger(), qint64(m["num_parameters"].get<std::int64_t>()));
    const QJsonArray tensors = o["tensors"].toArray();
    QCOMPARE(qsizetype(tensors.size()), qsizetype(m["tensors"].size()));
    qint64 compressible = 0, bytes = 0;
    for (const auto& v : tensors) {
      const QJsonObject t = v.toObject();
      if (t["compressible"].toBool()) compressible += t["numel"].toInteger();
      bytes += t["bytes"].toInteger();
    }
    QCOMPARE(o["parameters"]["compressible"].toInteger(), compressible);
    QVERIFY(compressible > 0);
    QVERIFY(o["weight_file_bytes"].toInteger() > bytes);  // headers come on top of the tensor bytes
  }

  void inspectTextNamesEveryTensor() {
    const Run r = entquant({"inspect", models() + "/tiny-llama-sharded"});
    QCOMPARE(r.code, 0);
    QVERIFY(r.out.contains("LlamaForCausalLM"));
    QVERIFY(r.out.contains("106,816 total"));
    QVERIFY(r.out.contains("in 4 weight files"));
    QVERIFY(r.out.contains("model.layers.1.mlp.down_proj.weight"));
  }

  void exactCountsOfTheLlamaFixture() {
    // 256x64 embedding (tied), 2 layers x (q 64x64, k 32x64, v 32x64, o 64x64, gate/up 128x64, down 64x128,
    // 2 norms of 64), final norm 64.
    const Run r = entquant({"inspect", models() + "/tiny-llama", "--json"});
    const QJsonObject o = QJsonDocument::fromJson(r.out).object();
    const qint64 perLayer = 64 * 64 + 32 * 64 + 32 * 64 + 64 * 64 + 3 * 128 * 64;
    QCOMPARE(o["parameters"]["compressible"].toInteger(), 2 * perLayer);
    QCOMPARE(o["parameters"]["total"].toInteger(), 256 * 64 + 2 * (perLayer + 2 * 64) + 64);
    QCOMPARE(o["memory_estimate"]["weights_bf16_bytes"].toInteger(), 2 * o["parameters"]["total"].toInteger());
    // KV cache: 2 (k, v) x 2 layers x 2 KV heads x head_dim 16 x 2 bytes
    QCOMPARE(o["memory_estimate"]["kv_cache_bf16_bytes_per_token"].toInteger(), qint64(2 * 2 * 2 * 16 * 2));
  }

  void failures_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("stderrStart");
    const QString corrupt = QString::fromStdString((eqtest::dataDir() / "corrupt").string());
    QTest::newRow("no arguments") << QStringList{} << 2 << "entquant ";
    QTest::newRow("unknown command") << QStringList{"squash"} << 2 << "entquant: unknown command \"squash\"";
    QTest::newRow("missing model") << QStringList{"inspect"} << 2 << "entquant inspect: missing argument";
    QTest::newRow("unknown option") << QStringList{"inspect", "x", "--fast"} << 2 << "entquant inspect: unknown option --fast";
    QTest::newRow("two models") << QStringList{"inspect", "a", "b"} << 2 << "entquant inspect: unexpected argument \"b\"";
    QTest::newRow("no such model") << QStringList{"inspect", "/no/such/dir"} << 1
                                   << "entquant inspect: /no/such/dir: no such file or folder";
    QTest::newRow("truncated file") << QStringList{"inspect", corrupt + "/truncated.safetensors", "--json"} << 1
                                    << "entquant inspect: " + corrupt + "/truncated.safetensors: tensor \"b\"";
    QTest::newRow("missing shard") << QStringList{"inspect", corrupt + "/missing_shard"} << 1
                                   << "entquant inspect: " + corrupt + "/missing_shard: missing shard";
  }
  void failures() {
    QFETCH(QStringList, args);
    QFETCH(int, code);
    QFETCH(QString, stderrStart);
    const Run r = entquant(args);
    QCOMPARE(r.code, code);
    QVERIFY2(QString(r.err).startsWith(stderrStart), r.err.constData());
    QVERIFY(r.out.isEmpty());  // nothing on stdout, also with --json
    if (code == 1) QCOMPARE(r.err.count('\n'), 1);  // one sentence
  }

  void helpAndVersion() {
    Run r = entquant({"--help"});
    QCOMPARE(r.code, 0);
    QVERIFY(r.out.contains("inspect"));
    r = entquant({"inspect", "--help"});
    QCOMPARE(r.code, 0);
    QVERIFY(r.out.startsWith("usage: entquant inspect MODEL|FILE.eqz [--json]"));
    r = entquant({"--version"});
    QCOMPARE(r.code, 0);
    QVERIFY(r.out.startsWith("entquant "));
  }
};

QTEST_MAIN(TestCli)
#include "test_cli.moc"
