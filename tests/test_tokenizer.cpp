// tokenizer.json BPE against HF `tokenizers` (tests/data/tokenizers: GPT-2, Llama-3, Qwen2 and SentencePiece-
// converted styles, trained on the GPU machine): ids with and without special tokens and decoded text for texts
// with Unicode, numbers, whitespace runs, special tokens and unseen characters; and variants of those four
// (variants_golden.json): added tokens with lstrip / rstrip / single_word / normalized (Phi-3's chat tokens among
// them), Metaspace with prepend_scheme "first", ByteLevel's prefix space, every Split behavior, Digits, a
// post-processor Sequence and no decoder.
#include "common/error.h"
#include "test_util.h"
#include "text/tokenizer.h"

#include <algorithm>

using namespace eq;
using namespace eq::text;

class TestTokenizer : public QObject {
  Q_OBJECT
  nlohmann::json golden_, variants_, fuzz_;

  // A base tokenizer.json (a test style's name, or a path from the repository root ending in .json) with a patch
  // of top-level keys.
  static Tokenizer patched(const std::string& base, const nlohmann::json& patch, const std::string& label) {
    const bool path = base.size() > 5 && base.compare(base.size() - 5, 5, ".json") == 0;
    auto j = eqtest::readJson(path ? eqtest::dataDir() / "../.." / base
                                   : eqtest::dataDir() / "tokenizers" / base / "tokenizer.json");
    for (const auto& [key, value] : patch.items()) j[key] = value;
    return Tokenizer::fromJson(j, label);
  }

  // A variant: its base tokenizer.json with the golden's patch of top-level keys.
  Tokenizer variant(const std::string& name) const {
    const auto& v = variants_.at(name);
    return patched(v["base"].get<std::string>(), v["patch"], name);
  }

 private slots:
  void initTestCase() {
    golden_ = eqtest::readJson(eqtest::dataDir() / "tokenizers/tokenizer_golden.json");
    variants_ = eqtest::readJson(eqtest::dataDir() / "tokenizers/variants_golden.json")["variants"];
  }

  void matchesHfTokenizers_data() {
    QTest::addColumn<QString>("style");
    QTest::addColumn<int>("index");
    for (const auto& [style, cases] : golden_.items())
      for (std::size_t i = 0; i < cases.size(); ++i)
        QTest::newRow(qPrintable(QString("%1 #%2").arg(eqtest::q(style)).arg(i))) << eqtest::q(style) << int(i);
  }
  void matchesHfTokenizers() {
    QFETCH(QString, style);
    QFETCH(int, index);
    const auto tok = Tokenizer::fromFile(eqtest::dataDir() / "tokenizers" / style.toStdString() / "tokenizer.json");
    const auto& c = golden_[style.toStdString()][index];
    const std::string text = c["text"].get<std::string>();
    QCOMPARE(tok.encode(text, true), c["ids"].get<std::vector<std::int32_t>>());
    QCOMPARE(tok.encode(text, false), c["ids_no_special"].get<std::vector<std::int32_t>>());
    QCOMPARE(eqtest::q(tok.decode(c["ids_no_special"].get<std::vector<std::int32_t>>())),
             eqtest::q(c["decoded"].get<std::string>()));
  }

  void matchesHfTokenizersVariants_data() {
    QTest::addColumn<QString>("name");
    QTest::addColumn<int>("index");
    for (const auto& [name, v] : variants_.items())
      for (std::size_t i = 0; i < v["cases"].size(); ++i)
        QTest::newRow(qPrintable(QString("%1 #%2").arg(eqtest::q(name)).arg(i))) << eqtest::q(name) << int(i);
  }
  void matchesHfTokenizersVariants() {
    QFETCH(QString, name);
    QFETCH(int, index);
    const auto tok = variant(name.toStdString());
    const auto& c = variants_[name.toStdString()]["cases"][index];
    const std::string text = c["text"].get<std::string>();
    const auto plain = c["ids_no_special"].get<std::vector<std::int32_t>>();
    QCOMPARE(tok.encode(text, true), c["ids"].get<std::vector<std::int32_t>>());
    QCOMPARE(tok.encode(text, false), plain);
    QCOMPARE(eqtest::q(tok.decode(plain)), eqtest::q(c["decoded"].get<std::string>()));
    QCOMPARE(eqtest::q(tok.decode(plain, true)), eqtest::q(c["decoded_skip_special"].get<std::string>()));
  }

  // Differential: seeded random texts of the pieces tokenizers get wrong (tools/fixtures/make_tokenizer_fuzz.py),
  // through every test tokenizer, the demo model's and each variant, against HF tokenizers. EQ_TOKENIZER_FUZZ names a
  // larger file made by the same script (tests/data/README.md).
  void matchesHfOnRandomTexts_data() {
    QTest::addColumn<QString>("name");
    fuzz_ = eqtest::readJson(eqtest::goldenOr("EQ_TOKENIZER_FUZZ", eqtest::dataDir() / "tokenizers/fuzz_golden.json"));
    QVERIFY(fuzz_["cases"].size() >= 20);
    for (const auto& [name, cases] : fuzz_["cases"].items()) QTest::newRow(name.c_str()) << eqtest::q(name);
  }
  void matchesHfOnRandomTexts() {
    QFETCH(QString, name);
    const auto& src = fuzz_["tokenizers"][name.toStdString()];
    const auto tok = patched(src["base"].get<std::string>(), src["patch"], name.toStdString());
    int failures = 0;
    const auto& cases = fuzz_["cases"][name.toStdString()];
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const auto& c = cases[i];
      const auto text = c["text"].get<std::string>();
      const auto plain = c["ids_no_special"].get<std::vector<std::int32_t>>();
      const char* what = nullptr;
      if (tok.encode(text, true) != c["ids"].get<std::vector<std::int32_t>>()) what = "ids";
      else if (tok.encode(text, false) != plain) what = "ids without specials";
      else if (tok.decode(plain) != c["decoded"].get<std::string>()) what = "decode";
      else if (tok.decode(plain, true) != c["decoded_skip_special"].get<std::string>()) what = "decode skipping specials";
      if (what && ++failures <= 5)
        qWarning("#%zu %s differ for %s", i, what, nlohmann::json(text).dump().c_str());
    }
    QVERIFY2(failures == 0, qPrintable(QString("%1 of %2 texts differ from HF tokenizers").arg(failures).arg(cases.size())));
  }

  // HF lowercases with Rust's char::to_lowercase: U+0130 (capital I with dot above) becomes "i" + U+0307, two
  // characters (utf8proc's simple mapping gives "i"). Found by matchesHfOnRandomTexts on the Lowercase variant.
  void lowercaseDottedCapitalI() {
    const auto tok = variant("flags");
    QCOMPARE(tok.encode("\xC4\xB0stanbul", false), tok.encode("i\xCC\x87stanbul", false));
    QVERIFY(tok.encode("\xC4\xB0stanbul", false) != tok.encode("istanbul", false));
  }

  void mergesInTheOldStringSpelling() {
    auto j = eqtest::readJson(eqtest::dataDir() / "tokenizers/gpt2/tokenizer.json");
    const auto arrays = Tokenizer::fromJson(j, "a");
    for (auto& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
    const auto strings = Tokenizer::fromJson(j, "s");
    const std::string text = "The quick brown fox, 1234 times: naïve!";
    QCOMPARE(strings.encode(text), arrays.encode(text));
  }

  // Added tokens are matched leftmost-longest (as HF's Aho-Corasick), whatever their order in the file.
  void longestAddedTokenWins() {
    auto j = eqtest::readJson(eqtest::dataDir() / "tokenizers/gpt2/tokenizer.json");
    const std::int32_t base = static_cast<std::int32_t>(Tokenizer::fromJson(j, "g").vocabSize()) + 100;
    j["added_tokens"].push_back({{"id", base}, {"content", "<x>"}, {"special", true}});
    j["added_tokens"].push_back({{"id", base + 1}, {"content", "<x>y"}, {"special", true}});
    const auto tok = Tokenizer::fromJson(j, "g");
    auto has = [](const std::vector<std::int32_t>& ids, std::int32_t id) {
      return std::find(ids.begin(), ids.end(), id) != ids.end();
    };
    const auto longer = tok.encode("a<x>yb", false), shorter = tok.encode("a<x>b", false);
    QVERIFY(has(longer, base + 1) && !has(longer, base));
    QVERIFY(has(shorter, base) && !has(shorter, base + 1));
  }

  // HF's own unit tests of added tokens (tokenizers/src/tokenizer/added_vocabulary.rs: options_use_cases,
  // test_single_word_is_correct, test_lstrip_unicode_space) on a byte-level vocabulary with a Lowercase normalizer:
  // the ids are the added tokens' ids and, between them, the normalized pieces' own encoding.
  void addedTokenRulesAsHfTests_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<QString>("tokens");      // which added tokens the tokenizer has
    QTest::addColumn<QStringList>("splits");  // "=token" for an added token, else a plain (normalized) piece
    QTest::newRow("options") << "[CLS] My name is Anthony [SEP]" << "options"
                             << QStringList{"=[CLS]", "=my", "=name", " is anthony ", "=[SEP]"};
    QTest::newRow("single word") << "<mask> My name <mask> A<mask> <mask>ony <mask>" << "mask"
                                 << QStringList{"=<mask>", " my name ", "=<mask>", " a<mask> <mask>ony ", "=<mask>"};
    QTest::newRow("unicode word") << QString::fromUtf8("<mask>, <mask>- \u25cc\u0330<mask>") << "mask"
                                  << QStringList{"=<mask>", ", ", "=<mask>", QString::fromUtf8("- \u25cc\u0330<mask>")};
    QTest::newRow("unicode space") << QString::fromUtf8("Hi <mask> there\t<mask>\t<mask>\u2000") << "strip"
                                   << QStringList{"hi", "=<mask>", "there", "=<mask>", "=<mask>"};
  }
  void addedTokenRulesAsHfTests() {
    QFETCH(QString, text);
    QFETCH(QString, tokens);
    QFETCH(QStringList, splits);
    auto j = eqtest::readJson(eqtest::dataDir() / "tokenizers/gpt2/tokenizer.json");
    j["normalizer"] = {{"type", "Lowercase"}};
    std::int32_t id = 1000;
    auto add = [&](const char* content, bool special, bool lstrip, bool rstrip, bool single) {
      j["added_tokens"].push_back({{"id", id++}, {"content", content}, {"special", special}, {"lstrip", lstrip}, {"rstrip", rstrip},
                                   {"single_word", single}, {"normalized", !special}});
    };
    if (tokens == "options") {
      add("my", false, true, true, false);
      add("name", false, false, false, false);
      add("ony", false, false, false, true);
      add("[CLS]", true, false, false, false);
      add("[SEP]", true, false, false, false);
    } else {
      add("<mask>", false, tokens == "strip", tokens == "strip", true);
    }
    const auto tok = Tokenizer::fromJson(j, "t");
    const auto plain = Tokenizer::fromJson(eqtest::readJson(eqtest::dataDir() / "tokenizers/gpt2/tokenizer.json"), "p");
    std::vector<std::int32_t> expected;
    for (const auto& s : splits) {
      if (s.startsWith('=')) {
        expected.push_back(tok.tokenId(s.mid(1).toStdString()));
      } else {
        const auto ids = plain.encode(s.toStdString(), false);
        expected.insert(expected.end(), ids.begin(), ids.end());
      }
    }
    QCOMPARE(tok.encode(text.toStdString(), false), expected);
  }

  // A long text (a megabyte of lines) splits exactly as its lines do one by one: the pre-tokenizer's regex walks the
  // text once (it used to re-check the whole text's UTF-8 at every match: minutes for a megabyte).
  void longTextsSplitLikeTheirLines() {
    const auto tok = Tokenizer::fromFile(eqtest::dataDir() / "tokenizers/gpt2/tokenizer.json");
    const std::string line = "The naïve fox, 1234 times: \u00e9t\u00e9!\n";
    std::string text;
    while (text.size() < (1u << 20)) text += line;
    const auto one = tok.encode(line, false);
    std::vector<std::int32_t> expected;
    for (std::size_t k = 0; k < text.size() / line.size(); ++k) expected.insert(expected.end(), one.begin(), one.end());
    QCOMPARE(tok.encode(text, false), expected);
  }

  void errors() {
    const auto tok = Tokenizer::fromFile(eqtest::dataDir() / "tokenizers/gpt2/tokenizer.json");
    EQ_EXPECT_ERROR(tok.encode(std::string("ab\xff", 3)), Errc::InvalidArgument, "text is not valid UTF-8 (at byte 2)");
    EQ_EXPECT_ERROR(Tokenizer::fromJson(nlohmann::json{{"model", {{"type", "Unigram"}}}}, "t.json"), Errc::Unsupported,
                    "t.json: tokenizer model \"Unigram\" is not supported (only BPE)");
    EQ_EXPECT_ERROR(Tokenizer::fromJson(nlohmann::json::array(), "t.json"), Errc::InvalidJson, "t.json: no \"model\" object");
    // Components this build does not know are refused when the file is read, not at the first text.
    const auto base = eqtest::readJson(eqtest::dataDir() / "tokenizers/gpt2/tokenizer.json");
    auto with = [&](const char* key, const nlohmann::json& value) {
      auto j = base;
      j[key] = value;
      return j;
    };
    EQ_EXPECT_ERROR(Tokenizer::fromJson(with("pre_tokenizer", {{"type", "Punctuation"}}), "t.json"), Errc::Unsupported,
                    "t.json: pre-tokenizer \"Punctuation\" is not supported");
    EQ_EXPECT_ERROR(Tokenizer::fromJson(with("pre_tokenizer", {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}}),
                                        "t.json"),
                    Errc::Unsupported, "t.json: Split behavior \"Sideways\" is not supported");
    EQ_EXPECT_ERROR(Tokenizer::fromJson(with("normalizer", {{"type", "Precompiled"}}), "t.json"), Errc::Unsupported,
                    "t.json: normalizer \"Precompiled\" is not supported");
    EQ_EXPECT_ERROR(Tokenizer::fromJson(with("decoder", {{"type", "WordPiece"}}), "t.json"), Errc::Unsupported,
                    "t.json: decoder \"WordPiece\" is not supported");
    auto negative = base;
    negative["added_tokens"].push_back({{"id", -3}, {"content", "<neg>"}, {"special", true}});
    EQ_EXPECT_ERROR(Tokenizer::fromJson(negative, "t.json"), Errc::InvalidJson, "t.json: added token \"<neg>\" has a negative id");
    EQ_EXPECT_ERROR(Tokenizer::fromJson(with("post_processor", {{"type", "Foo"}}), "t.json"), Errc::Unsupported,
                    "t.json: post-processor \"Foo\" is not supported");
    EQ_EXPECT_ERROR(Tokenizer::fromJson(with("post_processor", {{"type", "TemplateProcessing"},
                                                                {"single", {{{"SpecialToken", {{"id", "<x>"}, {"type_id", 0}}}}}},
                                                                {"special_tokens", nlohmann::json::object()}}),
                                        "t.json"),
                    Errc::InvalidJson, "t.json: post-processor names special token \"<x>\" it does not define");
  }

  // Found by fuzzing (tests/fuzz): a component without a member it needs, or with one of the wrong type, is an
  // error naming the file (it was undefined behaviour: a missing member read through a const JSON), and an id too
  // large for the id table is refused before the table is allocated.
  void malformedComponents_data() {
    QTest::addColumn<QString>("key");
    QTest::addColumn<QString>("value");
    QTest::addColumn<QString>("message");
    QTest::newRow("normalizer sequence") << "normalizer" << R"({"type": "Sequence"})"
                                         << "t.json: malformed tokenizer.json (key 'normalizers' not found)";
    QTest::newRow("pre-tokenizer sequence") << "pre_tokenizer" << R"({"type": "Sequence"})"
                                            << "t.json: malformed tokenizer.json (key 'pretokenizers' not found)";
    QTest::newRow("decoder sequence") << "decoder" << R"({"type": "Sequence"})"
                                      << "t.json: malformed tokenizer.json (key 'decoders' not found)";
    QTest::newRow("replace without pattern") << "normalizer" << R"({"type": "Replace", "content": "x"})"
                                             << "t.json: malformed tokenizer.json (key 'pattern' not found)";
    QTest::newRow("type a number") << "normalizer" << R"({"type": 5})"
                                   << "t.json: malformed tokenizer.json (type must be string, but is number)";
    QTest::newRow("model type a number") << "model" << R"({"type": 1, "vocab": {}, "merges": []})"
                                         << "t.json: malformed tokenizer.json (type must be string, but is number)";
    QTest::newRow("id beyond the table") << "model" << R"({"type": "BPE", "vocab": {"a": 2147483647}, "merges": []})"
                                         << "t.json: token id 2147483647 is out of range (this build reads ids up to 16777215)";
    QTest::newRow("id a huge float") << "model" << R"({"type": "BPE", "vocab": {"a": 7.77e29}, "merges": []})"
                                     << "t.json: token id 7.77e+29 is not a 32-bit integer";
    QTest::newRow("id a fraction") << "model" << R"({"type": "BPE", "vocab": {"a": 1.5}, "merges": []})"
                                   << "t.json: token id 1.5 is not a 32-bit integer";
    QTest::newRow("added id beyond 32 bits") << "added_tokens" << R"([{"id": 1099511627776, "content": "<x>"}])"
                                             << "t.json: token id 1099511627776 is not a 32-bit integer";
  }
  void malformedComponents() {
    QFETCH(QString, key);
    QFETCH(QString, value);
    QFETCH(QString, message);
    auto j = eqtest::readJson(eqtest::dataDir() / "tokenizers/gpt2/tokenizer.json");
    j[key.toStdString()] = nlohmann::json::parse(value.toStdString());
    EQ_EXPECT_ERROR(Tokenizer::fromJson(j, "t.json"), Errc::InvalidJson, message.toStdString());
  }

  // Found by fuzzing: Qwen2's NFC normalizer dropped everything after a NUL byte (utf8proc_NFC reads a C string).
  void nulBytesSurviveNormalizers_data() {
    QTest::addColumn<QString>("name");
    for (const char* name : {"gpt2", "llama3", "qwen2"}) QTest::newRow(name) << name;
  }
  void nulBytesSurviveNormalizers() {
    QFETCH(QString, name);
    const auto tok = Tokenizer::fromFile(eqtest::dataDir() / "tokenizers" / name.toStdString() / "tokenizer.json");
    static constexpr char raw[] = "pocket\0\0 of a watch\0";
    const std::string text(raw, sizeof raw - 1);
    const auto ids = tok.encode(text, false);
    QCOMPARE(tok.decode(ids), text);
    // byte-level BPE spells the byte 0 as U+0100
    QCOMPARE(std::count(ids.begin(), ids.end(), tok.tokenId("\xC4\x80")), 3);
  }
};

QTEST_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
