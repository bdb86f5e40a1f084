// tokenizer.json BPE against HF `tokenizers` (tests/data/tokenizers: GPT-2, Llama-3, Qwen2 and SentencePiece-
// converted styles, trained on the GPU machine): ids with and without special tokens and decoded text for texts
// with Unicode, numbers, whitespace runs, special tokens and unseen characters.
#include "common/error.h"
#include "test_util.h"
#include "text/tokenizer.h"

#include <algorithm>

using namespace eq;
using namespace eq::text;

class TestTokenizer : public QObject {
  Q_OBJECT
  nlohmann::json golden_;

 private slots:
  void initTestCase() { golden_ = eqtest::readJson(eqtest::dataDir() / "tokenizers/tokenizer_golden.json"); }

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
  }
};

QTEST_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
