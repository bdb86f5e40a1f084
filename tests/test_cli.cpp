// The entquant CLI contract: exit codes (0 ok, 1 failure, 2 usage), --json printing exactly one JSON object, exact
// parameter counts of the fixtures, and one clear sentence on stderr naming the file on failure.
#include "test_util.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>

#include <cmath>

namespace {

using Run = eqtest::CliRun;
Run entquant(const QStringList& args) { return eqtest::runCli(args); }

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
    QTest::newRow("missing -o") << QStringList{"compress", models() + "/tiny-llama"} << 2 << "entquant compress: missing -o OUT.eqz";
    QTest::newRow("unknown option") << QStringList{"inspect", "x", "--fast"} << 2 << "entquant inspect: unknown option --fast";
    QTest::newRow("two models") << QStringList{"inspect", "a", "b"} << 2 << "entquant inspect: unexpected argument \"b\"";
    QTest::newRow("no such model") << QStringList{"inspect", "/no/such/dir"} << 1
                                   << "entquant inspect: /no/such/dir: no such file or folder";
    QTest::newRow("truncated file") << QStringList{"inspect", corrupt + "/truncated.safetensors", "--json"} << 1
                                    << "entquant inspect: " + corrupt + "/truncated.safetensors: tensor \"b\"";
    QTest::newRow("missing shard") << QStringList{"inspect", corrupt + "/missing_shard"} << 1
                                   << "entquant inspect: " + corrupt + "/missing_shard: missing shard";
    // Core errors name no flags; the CLI puts the flag of the setting they concern in front.
    QTest::newRow("bad rule") << QStringList{"compress", models() + "/tiny-llama", "-o", "x.eqz", "--layer-bits", "mlp"}
                              << 1 << "entquant compress: --layer-bits \"mlp\": expected REGEX=BITS or REGEX=keep\n";
    QTest::newRow("no tokenizer to calibrate on")
        << QStringList{"compress", models() + "/tiny-llama", "-o", "x.eqz", "--calibration-text", "/etc/hostname"} << 1
        << "entquant compress: --calibration-text: " + models() +
               "/tiny-llama: no tokenizer.json; calibrating on a text needs the model's tokenizer\n";
    QTest::newRow("plan of another model")
        << QStringList{"compress", models() + "/tiny-qwen2", "-o", "x.eqz", "--plan", planOfTinyLlama()} << 1
        << "entquant compress: the plan does not fit " + models() + "/tiny-qwen2: it lists 20 tensors, the model has 26\n";
  }
  // A plan of tiny-llama at 3 bits, written by `entquant plan` once per run.
  static QString planOfTinyLlama() {
    static QTemporaryDir dir;
    const QString path = dir.filePath("tiny-llama.plan.json");
    if (!QFile::exists(path)) eqtest::runCli({"plan", models() + "/tiny-llama", "-o", path, "--json"});
    return path;
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

  void demoModelIsTheDefault() {  // no MODEL: the bundled demo model, and a note on stderr saying so
    const Run r = entquant({"inspect", "--json"});
    QCOMPARE(r.code, 0);
    QVERIFY2(r.err.startsWith("No model given: using the bundled demo model ("), r.err.constData());
    QCOMPARE(QJsonDocument::fromJson(r.out).object()["parameters"].toObject()["total"].toInteger(), qint64(11474240));
  }

  void compressVerifyDecompress() {
    QTemporaryDir dir;
    const QString eqz = dir.filePath("m.eqz");
    Run r = entquant({"compress", models() + "/tiny-qwen3", "-o", eqz, "--bits", "2.5", "--json", "--threads", "2"});
    QCOMPARE(r.code, 0);
    const QJsonObject o = QJsonDocument::fromJson(r.out).object();
    for (const char* key : {"effective_bpw", "entropy_bpw", "model_bpw", "seconds", "tensors"}) QVERIFY2(o.contains(key), key);
    QVERIFY(std::fabs(o["effective_bpw"].toDouble() - 2.5) < 0.2);  // tiny tensors: 64-byte sections dominate
    const QJsonObject t = o["tensors"].toArray()[2].toObject();
    for (const char* key : {"name", "shape", "lambda", "effective_bpw", "entropy", "distinct_symbols", "rel_l1", "rel_l2"})
      QVERIFY2(t.contains(key), key);
    r = entquant({"verify", eqz, "--json"});
    QCOMPARE(r.code, 0);
    QVERIFY(QJsonDocument::fromJson(r.out).object()["ok"].toBool());
    r = entquant({"decompress", eqz, "-o", dir.filePath("dec")});
    QCOMPARE(r.code, 0);
    QVERIFY(QFile::exists(dir.filePath("dec/model.safetensors")));
    r = entquant({"inspect", eqz, "--json"});
    QCOMPARE(r.code, 0);
    QCOMPARE(QJsonDocument::fromJson(r.out).object()["parameters"].toObject()["total"].toInteger(),
             qint64(expected_["models"]["tiny-qwen3"]["num_parameters"].get<std::int64_t>()));
    // A damaged stream: verify fails naming the section, exit code 1, one line.
    QFile f(eqz);
    QVERIFY(f.open(QIODevice::ReadWrite));
    const QJsonObject idx = QJsonDocument::fromJson(entquant({"inspect", eqz, "--json"}).out).object();
    QVERIFY(!idx.isEmpty());
    f.seek(200);
    char c;
    f.getChar(&c);
    f.seek(200);
    f.putChar(char(c ^ 0x5A));
    f.close();
    r = entquant({"verify", eqz});
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("fails its checksum; the file is corrupt"), r.err.constData());
    QCOMPARE(r.err.count('\n'), 1);
  }

  void compressUsageErrors_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("message");
    const QString m = models() + "/tiny-llama";
    QTest::newRow("no output") << QStringList{"compress", m} << "entquant compress: missing -o OUT.eqz";
    QTest::newRow("bits and lambda") << QStringList{"compress", m, "-o", "x.eqz", "--bits", "3", "--lambda", "2"}
                                     << "entquant compress: --bits and --lambda exclude each other";
    QTest::newRow("bad format") << QStringList{"compress", m, "-o", "x.eqz", "--format", "fp4"}
                                << "entquant compress: --format must be fp8 or int8, not \"fp4\"";
    QTest::newRow("bad method") << QStringList{"compress", m, "-o", "x.eqz", "--method", "gptq"}
                                << "entquant compress: --method must be entquant, rtn4, rtn3, rtn2 or nf4, not \"gptq\"";
    QTest::newRow("bits not a number") << QStringList{"compress", m, "-o", "x.eqz", "--bits", "three"}
                                       << "entquant compress: option --bits expects a number, got \"three\"";
    QTest::newRow("bits too high") << QStringList{"compress", m, "-o", "x.eqz", "--bits", "9"}
                                   << "entquant compress: the target must be positive (bits at most 8)";
    QTest::newRow("decompress no dir") << QStringList{"decompress", "x.eqz"} << "entquant decompress: missing -o DIR";
  }
  void compressUsageErrors() {
    QFETCH(QStringList, args);
    QFETCH(QString, message);
    const Run r = entquant(args);
    QCOMPARE(r.code, 2);
    QVERIFY2(QString(r.err).startsWith(message), r.err.constData());
    QVERIFY(!QFile::exists("x.eqz"));
  }

  void logitsMatchTransformers() {
    const auto g = eqtest::readJson(eqtest::dataDir() / "golden/logits_golden.json");
    QStringList ids;
    for (const auto& i : g["ids"]) ids << QString::number(i.get<int>());
    const Run r = entquant({"logits", models() + "/tiny-qwen2", "--ids", ids.join(','), "--json"});
    QCOMPARE(r.code, 0);
    const QJsonObject o = QJsonDocument::fromJson(r.out).object();
    const QJsonArray argmax = o["argmax"].toArray();
    const auto expected = g["models"]["tiny-qwen2"]["argmax"];
    QCOMPARE(qsizetype(argmax.size()), qsizetype(expected.size()));
    for (qsizetype i = 0; i < argmax.size(); ++i) QCOMPARE(argmax[i].toInteger(), qint64(expected[i].get<std::int64_t>()));
    QCOMPARE(o["logits_last"].toArray().size(), 256);
    const Run bad = entquant({"logits", models() + "/tiny-qwen2", "--ids", "1,x"});
    QCOMPARE(bad.code, 2);
    QVERIFY(bad.err.startsWith("entquant logits: --ids expects comma-separated token ids, got \"1,x\""));
  }

  void tokenizeMatchesHf() {
    const auto g = eqtest::readJson(eqtest::dataDir() / "tokenizers/tokenizer_golden.json");
    const auto& c = g["qwen2"][4];
    const QString dir = QString::fromStdString((eqtest::dataDir() / "tokenizers/qwen2").string());
    const Run r = entquant({"tokenize", dir, "--text", eqtest::q(c["text"].get<std::string>()), "--json"});
    QCOMPARE(r.code, 0);
    const QJsonArray ids = QJsonDocument::fromJson(r.out).object()["ids"].toArray();
    const auto expected = c["ids"].get<std::vector<int>>();
    QCOMPARE(qsizetype(ids.size()), qsizetype(expected.size()));
    for (qsizetype i = 0; i < ids.size(); ++i) QCOMPARE(ids[i].toInt(), expected[i]);
    const Run missing = entquant({"tokenize", models() + "/tiny-llama", "--text", "x"});
    QCOMPARE(missing.code, 1);
    QVERIFY(missing.err.contains("no tokenizer.json in the model folder"));
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
