// The model session (pipeline/model_session.h): each of the four inputs a user can point at (a model folder, one
// .safetensors file, an archive of a folder, an .eqz file) opens to the same model, tokenizer, end-of-generation
// ids, sampling defaults, chat template and logits; what is missing is named where it is missing; loading reports
// progress and can be cancelled. And the CLI's run commands on each kind (they once failed on archives with "not
// valid JSON (error at byte 1)").
#include "common/thread_pool.h"
#include "pipeline/compress.h"
#include "pipeline/demo_model.h"
#include "pipeline/model_session.h"
#include "test_util.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>

#include <archive.h>
#include <archive_entry.h>

using namespace eq;
namespace fs = std::filesystem;

namespace {

const fs::path kModel = eqtest::dataDir() / "models/tiny-llama-tok";  // weights, config, tokenizer

// A .tar.gz of `folder`'s files under "model/".
void writeTarGz(const fs::path& folder, const fs::path& out) {
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  archive_write_open_filename(a, out.c_str());
  for (const auto& e : fs::directory_iterator(folder)) {
    const std::string bytes = eqtest::readText(e.path());
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, ("model/" + e.path().filename().string()).c_str());
    archive_entry_set_size(entry, static_cast<la_int64_t>(bytes.size()));
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    archive_write_header(a, entry);
    archive_write_data(a, bytes.data(), bytes.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
}

}  // namespace

class TestSession : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  fs::path dir_, archive_, eqz_, loneWithFiles_, loneBare_;
  std::vector<std::int32_t> ids_{1, 5, 9, 20, 7};

 private slots:
  void initTestCase() {
    dir_ = tmp_.path().toStdString();
    archive_ = dir_ / "model.tar.gz";
    writeTarGz(kModel, archive_);
    eqz_ = dir_ / "model.eqz";
    CompressOptions o;
    o.target.value = 8.0;  // near-lossless, so its logits stay close to the original's
    o.threads = 2;
    compressModel(*ModelSource::open(kModel), eqz_, o);
    loneWithFiles_ = kModel / "model.safetensors";  // config.json, tokenizer beside it
    fs::create_directories(dir_ / "bare");
    loneBare_ = dir_ / "bare/model.safetensors";
    fs::copy_file(kModel / "model.safetensors", loneBare_);
  }

  void everyKindOpensTheSameModel_data() {
    QTest::addColumn<QString>("path");
    QTest::addColumn<int>("kind");
    QTest::newRow("folder") << eqtest::q(kModel.string()) << int(SourceKind::Folder);
    QTest::newRow("safetensors file") << eqtest::q(loneWithFiles_.string()) << int(SourceKind::SafetensorsFile);
    QTest::newRow("archive") << eqtest::q(archive_.string()) << int(SourceKind::Archive);
    QTest::newRow("eqz") << eqtest::q(eqz_.string()) << int(SourceKind::Eqz);
  }
  void everyKindOpensTheSameModel() {
    QFETCH(QString, path);
    QFETCH(int, kind);
    const auto folder = ModelSession::open(kModel);
    SessionOptions so;
    so.contextLength = 64;
    std::vector<Phase> phases;
    so.progress = [&](const Progress& p) {
      if (phases.empty() || phases.back() != p.phase) phases.push_back(p.phase);
    };
    const auto s = ModelSession::open(path.toStdString(), so);
    QCOMPARE(int(s->kind()), kind);
    QVERIFY(s->config());
    QCOMPARE(s->config()->modelType, std::string("llama"));
    QVERIFY(s->hasTokenizer());
    const std::string text = "Alice was beginning to get very tired";
    QCOMPARE(s->tokenizer().encode(text), folder->tokenizer().encode(text));
    QCOMPARE(s->eosIds(), folder->eosIds());
    QCOMPARE(s->samplingDefaults().temperature, folder->samplingDefaults().temperature);
    QCOMPARE(s->chatTemplate().has_value(), folder->chatTemplate().has_value());
    // the archive unpacks, then every kind loads its blocks
    if (kind == int(SourceKind::Archive)) QVERIFY(!phases.empty() && phases.front() == Phase::Extract);
    QCOMPARE(phases.back(), Phase::Load);
    // the same logits as the engine loaded directly from the weights
    ThreadPool pool(2);
    const auto weights = model::WeightSource::open(kind == int(SourceKind::Eqz) ? eqz_ : kModel, pool);
    model::LoadOptions lo;
    lo.contextLength = 64;
    QCOMPARE(s->engine().forward(ids_), model::loadCausalLM(*weights, pool, lo)->forward(ids_));
    QCOMPARE(s->inspect().parametersTotal, folder->inspect().parametersTotal);
  }

  void missingPartsAreNamed() {
    const auto bare = ModelSession::open(loneBare_);
    QVERIFY(!bare->config());
    QVERIFY(!bare->hasTokenizer());
    EQ_EXPECT_ERROR(bare->tokenizer(), Errc::NotFound, loneBare_.string() + ": no tokenizer.json beside the file");
    EQ_EXPECT_ERROR(bare->loadEngine(64), Errc::BadConfig,
                    loneBare_.string() + ": no config.json, so the model cannot be run");
    const fs::path noTok = eqtest::dataDir() / "models/tiny-llama";
    EQ_EXPECT_ERROR(ModelSession::open(noTok)->tokenizer(), Errc::NotFound,
                    noTok.string() + ": no tokenizer.json in the model folder");
    EQ_EXPECT_ERROR(ModelSession::open(noTok)->requireChatTemplate(), Errc::Unsupported,
                    noTok.string() + ": the model has no chat template (chat_template.jinja or tokenizer_config.json)");
    const fs::path tarNoTok = dir_ / "notok.tar.gz";
    writeTarGz(noTok, tarNoTok);
    EQ_EXPECT_ERROR(ModelSession::open(tarNoTok)->tokenizer(), Errc::NotFound,
                    tarNoTok.string() + ": the archive holds no tokenizer.json");
    EQ_EXPECT_ERROR(ModelSession::open(dir_ / "nothing"), Errc::NotFound,
                    (dir_ / "nothing").string() + ": no such file or folder");
    EQ_EXPECT_ERROR(ModelSession::open(kModel)->engine(), Errc::InvalidArgument,
                    kModel.string() + ": the model is not loaded");
  }

  void loadingCancels() {
    SessionOptions so;
    so.contextLength = 64;
    int asked = 0;
    so.keepGoing = [&] { return ++asked < 2; };  // the second block is not loaded
    EQ_EXPECT_ERROR(ModelSession::open(kModel, so), Errc::Cancelled, "loading cancelled");
    so.keepGoing = [] { return false; };
    EQ_EXPECT_ERROR(ModelSession::open(archive_, so), Errc::Cancelled,
                    archive_.string() + ": extraction cancelled");
  }

  // The CLI's run commands on every kind: once "not valid JSON (error at byte 1)" on an archive.
  void cliRunsEveryKind_data() {
    everyKindOpensTheSameModel_data();
  }
  void cliRunsEveryKind() {
    QFETCH(QString, path);
    const auto greedy = eqtest::runCli({"generate", eqtest::q(kModel.string()), "--prompt", "Alice", "--max-tokens", "6",
                                        "--json"});
    const auto r = eqtest::runCli({"generate", path, "--prompt", "Alice", "--max-tokens", "6", "--json"});
    QCOMPARE(r.code, 0);
    const auto text = QJsonDocument::fromJson(r.out).object()["text"].toString();
    if (!path.endsWith(".eqz")) QCOMPARE(text, QJsonDocument::fromJson(greedy.out).object()["text"].toString());
    const auto ppl = eqtest::runCli({"ppl", path, "--text", eqtest::q((eqtest::dataDir() / "text/sample.txt").string()),
                                     "--ctx", "32", "--max-windows", "2", "--json"});
    QCOMPARE(ppl.code, 0);
    QVERIFY(QJsonDocument::fromJson(ppl.out).object()["ppl"].toDouble() > 1);
    const auto tok = eqtest::runCli({"tokenize", path, "--text", "Alice", "--json"});
    QCOMPARE(tok.code, 0);
  }

  void cliNamesTheMissingTokenizer() {
    const auto r = eqtest::runCli({"generate", eqtest::q(loneBare_.string()), "--prompt", "x"});
    QCOMPARE(r.code, 1);
    QCOMPARE(QString(r.err), eqtest::q("entquant generate: " + loneBare_.string() + ": no config.json, so the model cannot be run\n"));
    const auto t = eqtest::runCli({"tokenize", eqtest::q(loneBare_.string()), "--text", "x"});
    QCOMPARE(t.code, 1);
    QCOMPARE(QString(t.err), eqtest::q("entquant tokenize: " + loneBare_.string() + ": no tokenizer.json beside the file\n"));
  }
};

QTEST_MAIN(TestSession)
#include "test_session.moc"
