// Opening models: the tiny HF fixtures of every architecture (golden names, shapes, dtypes and parameter counts
// from transformers), sharded folders, single files, archives of every supported kind, cancel, and config.json
// variants (old rope_scaling and transformers-5 rope_parameters, eos lists, text_config, defaults).
#include "model/model_source.h"
#include "test_util.h"

#include <archive.h>
#include <archive_entry.h>

#include <atomic>

using namespace eq;
namespace fs = std::filesystem;

namespace {

fs::path modelsDir() { return eqtest::dataDir() / "models"; }

// Packs `folder` under the top folder name `top` into an archive of the given format and filter.
void makeArchive(const fs::path& folder, const fs::path& out, const std::string& top, const std::string& format,
                 const std::string& filter) {
  struct archive* a = archive_write_new();
  QVERIFY(archive_write_set_format_by_name(a, format.c_str()) == ARCHIVE_OK);
  if (!filter.empty()) QVERIFY2(archive_write_add_filter_by_name(a, filter.c_str()) == ARCHIVE_OK, archive_error_string(a));
  QVERIFY(archive_write_open_filename(a, out.c_str()) == ARCHIVE_OK);
  struct archive_entry* dir = archive_entry_new();
  archive_entry_set_pathname(dir, (top + "/").c_str());
  archive_entry_set_filetype(dir, AE_IFDIR);
  archive_entry_set_perm(dir, 0755);
  archive_write_header(a, dir);
  archive_entry_free(dir);
  for (const auto& e : fs::directory_iterator(folder)) {
    const std::string data = eqtest::readText(e.path());
    struct archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, (top + "/" + e.path().filename().string()).c_str());
    archive_entry_set_size(entry, static_cast<la_int64_t>(data.size()));
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    QVERIFY(archive_write_header(a, entry) == ARCHIVE_OK);
    QVERIFY(archive_write_data(a, data.data(), data.size()) == static_cast<la_ssize_t>(data.size()));
    archive_entry_free(entry);
  }
  QVERIFY(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
}

ModelConfig configFrom(const std::string& json) { return parseModelConfig(nlohmann::json::parse(json), "config.json"); }

const char* kBase = R"("hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 256)";

}  // namespace

class TestModelSource : public QObject {
  Q_OBJECT
  nlohmann::json expected_;

 private slots:
  void initTestCase() { expected_ = eqtest::readJson(modelsDir() / "expected.json"); }

  void fixtures_data() {
    QTest::addColumn<QString>("name");
    for (const auto& [name, m] : expected_["models"].items()) QTest::newRow(name.c_str()) << eqtest::q(name);
    QVERIFY(expected_["models"].size() >= 8);
  }
  void fixtures() {
    QFETCH(QString, name);
    const auto& m = expected_["models"][name.toStdString()];
    const auto src = ModelSource::open(modelsDir() / name.toStdString());
    QCOMPARE(src->kind(), SourceKind::Folder);
    QVERIFY(src->config());
    QCOMPARE(eqtest::q(src->config()->architecture()), eqtest::q(m["architecture"].get<std::string>()));
    QCOMPARE(eqtest::q(src->config()->modelType), eqtest::q(m["model_type"].get<std::string>()));
    QCOMPARE(src->tensors().size(), m["tensors"].size());
    std::uint64_t total = 0;
    for (const auto& t : m["tensors"]) {
      const ModelTensor* mt = src->find(t["name"].get<std::string>());
      QVERIFY2(mt, t["name"].get<std::string>().c_str());
      QCOMPARE(mt->info->shape, t["shape"].get<std::vector<std::int64_t>>());
      QCOMPARE(eqtest::q(std::string(dtypeName(mt->info->dtype))), eqtest::q(t["dtype"].get<std::string>()));
      QCOMPARE(eqtest::q(src->files()[mt->file].path().filename().string()), eqtest::q(t["file"].get<std::string>()));
      total += mt->info->numel;
    }
    QCOMPARE(total, m["parameters_in_files"].get<std::uint64_t>());
    QCOMPARE(total, m["num_parameters"].get<std::uint64_t>());
    QVERIFY(src->warnings().empty());
    QVERIFY(src->otherFiles().count("config.json"));
  }

  void configsOfFixtures() {
    auto cfg = [](const char* name) { return *ModelSource::open(modelsDir() / name)->config(); };
    const ModelConfig llama = cfg("tiny-llama");
    QCOMPARE(llama.rope.type, std::string("llama3"));
    QCOMPARE(llama.rope.theta, 500000.0);
    QCOMPARE(llama.rope.factor, 8.0);
    QCOMPARE(llama.rope.originalMaxPositions, std::int64_t(128));
    QCOMPARE(llama.eosTokenIds, (std::vector<std::int64_t>{2, 3}));
    QVERIFY(llama.tieWordEmbeddings);
    QCOMPARE(llama.headDim, std::int64_t(16));
    const ModelConfig qwen3 = cfg("tiny-qwen3");
    QVERIFY(qwen3.qkNorm);
    QCOMPARE(qwen3.headDim, std::int64_t(32));
    QCOMPARE(qwen3.rope.type, std::string("yarn"));
    QCOMPARE(qwen3.rope.factor, 4.0);
    QVERIFY(!qwen3.slidingWindow);
    QVERIFY(cfg("tiny-qwen2").attentionBias);
    const ModelConfig gemma2 = cfg("tiny-gemma2");
    QCOMPARE(gemma2.finalLogitSoftcap, 30.0);
    QCOMPARE(gemma2.attnLogitSoftcap, 50.0);
    QCOMPARE(gemma2.slidingWindow.value_or(0), std::int64_t(32));
    QCOMPARE(gemma2.layerTypes, (std::vector<std::string>{"sliding_attention", "full_attention"}));
    QCOMPARE(gemma2.hiddenAct, std::string("gelu_pytorch_tanh"));
    QCOMPARE(cfg("tiny-mistral").slidingWindow.value_or(0), std::int64_t(64));
    const ModelConfig mixtral = cfg("tiny-mixtral");
    QCOMPARE(mixtral.numExperts, std::int64_t(4));
    QCOMPARE(mixtral.expertsPerToken, std::int64_t(2));
    QCOMPARE(cfg("tiny-phi3").normEps, 1e-5);
  }

  void shardedFolderUsesTheIndex() {
    const auto src = ModelSource::open(modelsDir() / "tiny-llama-sharded");
    QCOMPARE(src->files().size(), std::size_t(4));
    const auto index = eqtest::readJson(modelsDir() / "tiny-llama-sharded/model.safetensors.index.json");
    for (const auto& [tensor, file] : index["weight_map"].items()) {
      const ModelTensor* t = src->find(tensor);
      QVERIFY(t);
      QCOMPARE(eqtest::q(src->files()[t->file].path().filename().string()), eqtest::q(file.get<std::string>()));
    }
  }

  void singleSafetensorsFile() {
    const auto src = ModelSource::open(modelsDir() / "tiny-qwen2/model.safetensors");
    QCOMPARE(src->kind(), SourceKind::SafetensorsFile);
    QCOMPARE(src->tensors().size(), std::size_t(26));
    QVERIFY(src->config());  // config.json beside the file is used
    QVERIFY(src->otherFiles().empty());
  }

  void tensorBytesAreTheFileBytes() {
    const auto src = ModelSource::open(modelsDir() / "tiny-phi3");
    const ModelTensor* t = src->find("model.layers.1.self_attn.qkv_proj.weight");
    QVERIFY(t);
    QCOMPARE(t->info->shape, (std::vector<std::int64_t>{64 + 2 * 32, 64}));
    const std::string raw = eqtest::readText(modelsDir() / "tiny-phi3/model.safetensors");
    const auto span = src->data(*t);
    QCOMPARE(span.size(), std::size_t(128 * 64 * 2));
    QVERIFY(std::memcmp(span.data(), raw.data() + src->files()[0].header().dataOffset() + t->info->begin,
                        span.size()) == 0);
  }

  void archives_data() {
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("format");
    QTest::addColumn<QString>("filter");
    QTest::newRow("zip") << "m.zip" << "zip" << "";
    QTest::newRow("tar") << "m.tar" << "pax" << "";
    QTest::newRow("tar.gz") << "m.tar.gz" << "pax" << "gzip";
    QTest::newRow("tar.xz") << "m.tar.xz" << "pax" << "xz";
    QTest::newRow("tar.zst") << "m.tar.zst" << "pax" << "zstd";
  }
  void archives() {
    QFETCH(QString, file);
    QFETCH(QString, format);
    QFETCH(QString, filter);
    TempDir tmp("eq-test");
    const fs::path archive = tmp.path() / file.toStdString();
    makeArchive(modelsDir() / "tiny-qwen3", archive, "tiny-qwen3", format.toStdString(), filter.toStdString());
    const auto folder = ModelSource::open(modelsDir() / "tiny-qwen3");
    fs::path extracted;
    {
      const auto src = ModelSource::open(archive);
      QCOMPARE(src->kind(), SourceKind::Archive);
      extracted = src->root();
      QVERIFY(fs::exists(extracted / "config.json"));
      QCOMPARE(src->tensors().size(), folder->tensors().size());
      for (const auto& t : folder->tensors()) {
        const ModelTensor* u = src->find(t.info->name);
        QVERIFY(u);
        const auto a = folder->data(t), b = src->data(*u);
        QVERIFY(a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0);
      }
      QCOMPARE(src->config()->architecture(), std::string("Qwen3ForCausalLM"));
    }
    QVERIFY2(!fs::exists(extracted), "the extraction folder must be removed with the source");
  }

  void cancelDuringExtraction() {
    TempDir tmp("eq-test");
    const fs::path archive = tmp.path() / "m.tar";
    makeArchive(modelsDir() / "tiny-llama", archive, "m", "pax", "");
    std::atomic<int> calls{0};
    OpenOptions options;
    options.keepGoing = [&] { return ++calls < 3; };
    EQ_EXPECT_ERROR(ModelSource::open(archive, options), Errc::Cancelled, archive.string() + ": extraction cancelled");
  }

  // Unpacking stops at its budget (by default the free space less a reserve): an entry whose declared size would
  // pass it is refused before it is written; one that grows past it (no size, or a size that lies) when it does.
  void extractionBudget_data() {
    QTest::addColumn<QString>("format");
    QTest::addColumn<qulonglong>("budget");
    QTest::addColumn<QString>("message");  // after "<archive>: "; {dest} is the extraction folder
    QTest::newRow("fits exactly") << "pax" << qulonglong(4000) << "";
    QTest::newRow("declared size, first entry") << "pax" << qulonglong(999)
        << "entry \"m/a.bin\" is 1000 B: more than the 999 B available for unpacking in {dest}";
    QTest::newRow("declared size, with the entries before") << "pax" << qulonglong(3999)
        << "entry \"m/b.bin\" is 2.9 KiB, 3.9 KiB with the entries before it: more than the 3.9 KiB available for "
           "unpacking in {dest}";
    QTest::newRow("zip") << "zip" << qulonglong(3999)
        << "entry \"m/b.bin\" is 2.9 KiB, 3.9 KiB with the entries before it: more than the 3.9 KiB available for "
           "unpacking in {dest}";
  }
  void extractionBudget() {
    QFETCH(QString, format);
    QFETCH(qulonglong, budget);
    QFETCH(QString, message);
    TempDir tmp("eq-test");
    fs::create_directories(tmp.path() / "in");
    eqtest::writeFile(tmp.path() / "in" / "a.bin", std::string(1000, 'a'));
    eqtest::writeFile(tmp.path() / "in" / "b.bin", std::string(3000, 'b'));
    const fs::path archive = tmp.path() / "m.archive", dest = tmp.path() / "out";
    makeArchive(tmp.path() / "in", archive, "m", format.toStdString(), "");
    fs::create_directories(dest);
    if (message.isEmpty()) {
      extractArchive(archive, dest, {}, budget);
      QCOMPARE(fs::file_size(dest / "m" / "b.bin"), std::uintmax_t(3000));
      return;
    }
    std::string expected = archive.string() + ": " + message.toStdString() +
                           " (set TMPDIR to a folder with more free space, or unpack the archive yourself and open the "
                           "folder)";
    expected.replace(expected.find("{dest}"), 6, dest.string());
    EQ_EXPECT_ERROR(extractArchive(archive, dest, {}, budget), Errc::NoSpace, expected);
  }

  // A zip whose sizes lie (10 bytes declared, 300 KB of zeros behind them) is stopped by what it writes.
  void extractionBudgetLyingSize() {
    const fs::path archive = eqtest::dataDir() / "corrupt" / "lying_size.zip";
    TempDir tmp("eq-test");
    EQ_EXPECT_ERROR(extractArchive(archive, tmp.path(), {}, 100000), Errc::NoSpace,
                    archive.string() + ": entry \"model/config.json\" makes the unpacked total 128.0 KiB: more than "
                    "the 97.7 KiB available for unpacking in " + tmp.path().string() + " (set TMPDIR to a folder with "
                    "more free space, or unpack the archive yourself and open the folder)");
  }

  void missingInput() {
    EQ_EXPECT_ERROR(ModelSource::open("/nonexistent/model"), Errc::NotFound,
                    "/nonexistent/model: no such file or folder");
    EQ_EXPECT_ERROR(ModelSource::open(modelsDir() / "expected.json"), Errc::Unsupported,
                    (modelsDir() / "expected.json").string() +
                        ": not a model folder, .safetensors file or archive (.zip, .tar, .tar.gz, .tar.xz, .tar.zst)");
  }

  void configVariants() {
    // Old rope_scaling with "type", theta at the top level.
    ModelConfig c = configFrom(std::string("{") + kBase +
                               R"(, "rope_theta": 1e6, "rope_scaling": {"type": "linear", "factor": 2.0}})");
    QCOMPARE(c.rope.type, std::string("linear"));
    QCOMPARE(c.rope.theta, 1e6);
    QCOMPARE(c.rope.factor, 2.0);
    QCOMPARE(c.numKvHeads, std::int64_t(4));  // defaults to the head count
    QCOMPARE(c.headDim, std::int64_t(16));
    QVERIFY(c.eosTokenIds.empty());
    // rope_parameters per layer type (transformers 5, Gemma 3 style).
    c = configFrom(std::string("{") + kBase + R"(, "model_type": "gemma3_text", "rope_parameters": {
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}})");
    QCOMPARE(c.rope.type, std::string("linear"));
    QCOMPARE(c.rope.theta, 1e6);
    QVERIFY(c.ropeLocal);
    QCOMPARE(c.ropeLocal->theta, 1e4);
    QVERIFY(c.tieWordEmbeddings);  // Gemma's default
    QVERIFY(c.qkNorm);
    // Multimodal wrapper: the language model lives in text_config.
    c = configFrom(std::string(R"({"architectures": ["Mistral3ForConditionalGeneration"], "model_type": "mistral3",
        "text_config": {)") + kBase + R"(, "head_dim": 128, "eos_token_id": [1, 7]}, "vision_config": {"hidden_size": 1}})");
    QCOMPARE(c.headDim, std::int64_t(128));
    QCOMPARE(c.eosTokenIds, (std::vector<std::int64_t>{1, 7}));
    QCOMPARE(c.architecture(), std::string("Mistral3ForConditionalGeneration"));
    // Qwen2 keeps sliding_window but turns it off; q/k/v biases are implied.
    c = configFrom(std::string("{") + kBase + R"(, "model_type": "qwen2", "sliding_window": 4096,
        "use_sliding_window": false, "unknown_future_field": {"x": 1}})");
    QVERIFY(!c.slidingWindow);
    QVERIFY(c.attentionBias);
    // Old Phi-3 "su" rope: parsed, reported unsupported.
    c = configFrom(std::string("{") + kBase + R"(, "rope_scaling": {"type": "su", "short_factor": [1.0], "long_factor": [1.0]}})");
    QCOMPARE(c.rope.type, std::string("longrope"));
    QVERIFY(!c.rope.supported());
    // yarn with explicit attention factor.
    c = configFrom(std::string("{") + kBase + R"(, "rope_parameters": {"rope_type": "yarn", "factor": 4.0,
        "rope_theta": 5e5, "original_max_position_embeddings": 4096, "beta_fast": 16, "attention_factor": 1.2}})");
    QCOMPARE(c.rope.betaFast, 16.0);
    QCOMPARE(c.rope.attentionFactor.value_or(0), 1.2);
    QCOMPARE(c.rope.originalMaxPositions, std::int64_t(4096));
  }

  void configErrors_data() {
    QTest::addColumn<QString>("json");
    QTest::addColumn<QString>("message");
    QTest::newRow("missing vocab") << R"({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4})"
                                   << R"(config.json: missing required field "vocab_size")";
    QTest::newRow("negative layers") << R"({"hidden_size": 64, "num_hidden_layers": -2, "num_attention_heads": 4, "vocab_size": 9})"
                                     << R"(config.json: field "num_hidden_layers" must be positive (got -2))";
    QTest::newRow("string size") << R"({"hidden_size": "64", "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 9})"
                                 << R"(config.json: field "hidden_size" must be an integer)";
    QTest::newRow("kv heads") << QString("{") + kBase + R"(, "num_key_value_heads": 3})"
                              << "config.json: num_attention_heads (4) is not a multiple of num_key_value_heads (3)";
    QTest::newRow("head dim") << R"({"hidden_size": 66, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 9})"
                              << "config.json: hidden_size (66) is not a multiple of num_attention_heads (4) and head_dim is not given";
    QTest::newRow("eos strings") << QString("{") + kBase + R"(, "eos_token_id": ["</s>"]})"
                                 << R"(config.json: field "eos_token_id" must hold integers)";
    QTest::newRow("rope factor") << QString("{") + kBase + R"(, "rope_scaling": {"rope_type": "yarn"}})"
                                 << R"(config.json: rope type "yarn" needs "factor" in "rope_scaling")";
    QTest::newRow("layer types") << QString("{") + kBase + R"(, "layer_types": ["full_attention"]})"
                                 << "config.json: layer_types has 1 entries for 2 layers";
    QTest::newRow("not an object") << "[1]" << "config.json: not a JSON object";
  }
  void configErrors() {
    QFETCH(QString, json);
    QFETCH(QString, message);
    try {
      configFrom(json.toStdString());
      QFAIL("no error");
    } catch (const Error& e) {
      QCOMPARE(QString(e.what()), message);
    }
  }

  void generationConfigOverridesEos() {
    TempDir tmp("eq-test");
    for (const auto& e : fs::directory_iterator(modelsDir() / "tiny-mistral"))
      fs::copy_file(e.path(), tmp.path() / e.path().filename());
    eqtest::writeFile(tmp.path() / "generation_config.json",
                      R"({"bos_token_id": 1, "eos_token_id": [2, 9, 11], "temperature": 0.6, "top_p": 0.9, "do_sample": true})");
    const auto src = ModelSource::open(tmp.path());
    QCOMPARE(src->endOfGenerationIds(), (std::vector<std::int64_t>{2, 9, 11}));
    QCOMPARE(src->generationConfig()->temperature.value_or(0), 0.6);
    QCOMPARE(src->generationConfig()->doSample.value_or(false), true);
  }

  void folderWithoutConfigWarns() {
    TempDir tmp("eq-test");
    fs::copy_file(modelsDir() / "tiny-llama/model.safetensors", tmp.path() / "model.safetensors");
    const auto src = ModelSource::open(tmp.path());
    QVERIFY(!src->config());
    QCOMPARE(src->warnings().size(), std::size_t(1));
    QCOMPARE(src->tensors().size(), std::size_t(20));
  }
};

QTEST_MAIN(TestModelSource)
#include "test_model_source.moc"
