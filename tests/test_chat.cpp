// The chat pane, A/B and the quality check on the offscreen platform: answers stream in several deltas and equal
// `entquant generate --chat`; Stop during a long prompt's prefill returns fast; A/B answers in both columns and
// marks the first difference; the quality card's numbers equal `entquant compare --json`; a corrupt .eqz shows its
// error in the pane; closing the window during generation exits cleanly; a long conversation keeps memory flat.
#include "chat/ab_pane.h"
#include "chat/chat_pane.h"
#include "common/error.h"
#include "main_window.h"
#include "pipeline/compress.h"
#include "pipeline/demo_model.h"
#include "test_util.h"
#include "widgets/quality_card.h"

#include <QElapsedTimer>
#include <QJsonDocument>
#include <QJsonObject>
#include <QPlainTextEdit>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>

#include <cmath>
#include <fstream>

using namespace eq;
using namespace eq::ui;

namespace {

QString demo() { return QString::fromStdString(demoModelPath().string()); }

std::uint64_t residentBytes() {
  std::ifstream in("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * 4096;
}

bool loadInto(ChatPane& pane, const QString& path) {
  QSignalSpy loaded(&pane.engine(), &ChatEngine::loaded);
  pane.chooseModel(path);
  pane.loadChosen();
  return loaded.wait(60000);
}

// Sends `text` and waits for the answer; the answer's text.
QString ask(ChatPane& pane, const QString& text, int* deltas = nullptr) {
  QSignalSpy done(&pane.engine(), &ChatEngine::answered);
  QSignalSpy pieces(&pane.engine(), &ChatEngine::delta);
  pane.send(text);
  if (!done.wait(120000)) return "(no answer)";
  if (deltas) *deltas = static_cast<int>(pieces.count());
  for (auto it = pane.messages().messages().rbegin(); it != pane.messages().messages().rend(); ++it)
    if (it->kind == ChatMessage::Kind::Assistant) return it->text;
  return {};
}

}  // namespace

class TestChat : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  QString eqz_;

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    eqz_ = tmp_.filePath("demo.eqz");
    CompressOptions o;
    o.threads = 2;
    compressModel(*ModelSource::open(demoModelPath()), eqz_.toStdString(), o);
  }

  void answersStreamAndMatchTheCli() {
    ChatPane pane;
    pane.show();
    QVERIFY(loadInto(pane, eqz_));
    QVERIFY2(pane.memoryText().startsWith("Needs "), qPrintable(pane.memoryText()));
    pane.setSampling(text::SamplingParams{0.0f});  // greedy, as entquant generate is unless asked
    const QString prompt = "Tell me a long story about a cat who lived by the sea.";
    int deltas = 0;
    const QString answer = ask(pane, prompt, &deltas);
    QVERIFY2(deltas > 1, qPrintable(QString("%1 deltas").arg(deltas)));
    const auto cli = eqtest::runCli({"generate", eqz_, "--chat", "--prompt", prompt, "--max-tokens", "512", "--json"});
    QCOMPARE(cli.code, 0);
    QCOMPARE(answer, QJsonDocument::fromJson(cli.out).object()["text"].toString());
    const auto& last = pane.messages().messages().back();
    QVERIFY(last.stats && last.stats->generatedTokens > 0 && last.stats->tokensPerSecond() > 0);
    QVERIFY(ChatMessageModel::statsText(*last.stats).contains("tok/s"));
  }

  void regenerateAndEdit() {
    ChatPane pane;
    QVERIFY(loadInto(pane, eqz_));
    pane.setSampling(text::SamplingParams{0.0f});
    const QString first = ask(pane, "What is the capital of France?");
    QSignalSpy done(&pane.engine(), &ChatEngine::answered);
    pane.regenerate();  // greedy: the same answer again, and the conversation is one exchange long
    QVERIFY(done.wait(60000));
    QCOMPARE(pane.messages().rowCount(), 2);
    QCOMPARE(pane.messages().messages().back().text, first);
    pane.editLast();
    QCOMPARE(pane.input().toPlainText(), QString("What is the capital of France?"));
    QCOMPARE(pane.messages().rowCount(), 0);
  }

  void stopDuringPrefill() {
    ChatPane pane;
    QVERIFY(loadInto(pane, demo()));
    QString longPrompt = "Read this and then tell me a very long story: ";
    for (int i = 0; i < 25; ++i) longPrompt += "The quick brown fox jumps over the lazy dog. ";
    QSignalSpy started(&pane.engine(), &ChatEngine::answerStarted);
    QSignalSpy failed(&pane.engine(), &ChatEngine::answerFailed);
    pane.send(longPrompt);
    QVERIFY(started.wait(10000));  // the worker runs the prompt (or has begun the answer)
    QElapsedTimer t;
    t.start();
    pane.stop();
    QVERIFY(failed.wait(10000));
    const qint64 ms = t.elapsed();
    qInfo("stopped %lld ms after Stop", static_cast<long long>(ms));
    QVERIFY(ms < 2000);
    QCOMPARE(failed.first().first().value<JobError>().code, static_cast<int>(Errc::Cancelled));
    QVERIFY(pane.messages().messages().back().text == "Stopped.");
  }

  void corruptEqzShowsItsError() {
    const QString bad = tmp_.filePath("bad.eqz");
    QFile::copy(eqz_, bad);
    QFile f(bad);
    QVERIFY(f.open(QIODevice::ReadWrite));
    f.resize(f.size() / 2);  // truncated
    f.close();
    ChatPane pane;
    QSignalSpy failed(&pane.engine(), &ChatEngine::loadFailed);
    pane.chooseModel(bad);
    pane.loadChosen();
    QVERIFY(failed.wait(30000));
    QVERIFY(pane.messages().rowCount() == 1);
    QVERIFY2(pane.messages().messages().back().text.startsWith(bad + ":"),
             qPrintable(pane.messages().messages().back().text));
  }

  void abMarksTheFirstDifference() {
    AbPane ab;
    ab.show();
    ab.setModels(demo(), eqz_);
    ab.load();
    QTRY_VERIFY_WITH_TIMEOUT(ab.statusText().startsWith("Both loaded") || ab.sequential(), 60000);
    QSignalSpy both(&ab, &AbPane::bothAnswered);
    ab.send("Write three sentences about the weather in spring.");
    QVERIFY(both.wait(120000));
    for (int c = 0; c < 2; ++c) {
      const auto& m = ab.column(c).messages();
      QCOMPARE(m.size(), std::size_t(2));
      QVERIFY(!m.back().text.isEmpty() && m.back().stats);
    }
    const QString a = ab.column(0).messages().back().text, b = ab.column(1).messages().back().text;
    if (a == b) {
      QVERIFY(both.first().first().toBool());
      QVERIFY(ab.statusText().startsWith("Identical"));
    } else {
      int at = 0;
      while (at < a.size() && at < b.size() && a[at] == b[at]) ++at;
      QCOMPARE(ab.column(0).messages().back().differsAt, at);
      QCOMPARE(ab.column(1).messages().back().differsAt, at);
    }
  }

  void qualityCardEqualsTheCli() {
    MainWindow w;
    QualityCard& card = w.quality();
    card.setModels(demo(), eqz_);
    card.setWindows(128, 4);
    QSignalSpy done(&card, &QualityCard::finished);
    card.run();
    QVERIFY(done.wait(120000));
    const auto cli = eqtest::runCli({"compare", demo(), eqz_, "--ctx", "128", "--max-windows", "4", "--json"});
    QCOMPARE(cli.code, 0);
    const QJsonObject o = QJsonDocument::fromJson(cli.out).object();
    const CompareResult& r = *card.result();
    QCOMPARE(r.original.ppl, o["ppl_original"].toDouble());
    QCOMPARE(r.compressed.ppl, o["ppl_compressed"].toDouble());
    QCOMPARE(r.meanKl, o["mean_kl"].toDouble());
    QCOMPARE(r.top1Agreement, o["top1_agreement"].toDouble());
    QCOMPARE(r.windows.size(), std::size_t(4));
    double kl = 0;
    for (const auto& win : r.windows) kl += win.meanKl;
    QVERIFY(std::fabs(kl / 4 - r.meanKl) < 1e-12);
    QVERIFY(card.cardText().contains("Perplexity"));
    const auto report = nlohmann::json::parse(card.reportJson().toStdString());
    QVERIFY(report.contains("quality"));
  }

  // Closing the window while an answer streams: the engine stops and its thread ends; nothing hangs or leaks.
  void closingDuringGeneration() {
    auto* w = new MainWindow;
    w->show();
    QVERIFY(loadInto(w->chat(), demo()));
    QSignalSpy started(&w->chat().engine(), &ChatEngine::delta);
    w->chat().send("Tell me a very long story.");
    QVERIFY(started.wait(30000));
    QElapsedTimer t;
    t.start();
    delete w;
    qInfo("window closed during generation in %lld ms", static_cast<long long>(t.elapsed()));
    QVERIFY(t.elapsed() < 2000);
  }

  // 200 turns in a short context: old turns are dropped, memory stays flat.
  void longConversationKeepsMemoryFlat() {
    ChatPane pane;
    QVERIFY(loadInto(pane, eqz_));
    std::uint64_t after20 = 0;
    for (int turn = 0; turn < 200; ++turn) {
      QSignalSpy done(&pane.engine(), &ChatEngine::answered);
      QSignalSpy failed(&pane.engine(), &ChatEngine::answerFailed);
      pane.send(QStringLiteral("Say something about the number %1.").arg(turn));
      QVERIFY(done.wait(60000) || !failed.isEmpty());
      QVERIFY2(failed.isEmpty(), qPrintable(failed.isEmpty() ? QString() : failed.first().first().value<JobError>().message));
      if (turn == 19) after20 = residentBytes();
    }
    const std::uint64_t after200 = residentBytes();
    qInfo("resident memory after 20 turns %.1f MiB, after 200 turns %.1f MiB", after20 / 1048576.0, after200 / 1048576.0);
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer keeps freed blocks in quarantine (256 MB by default): resident memory grows by design there
    // (543 -> 766 MiB measured); the Release build checks the claim, this build the trimming and the memory's use.
    qInfo("AddressSanitizer build: resident growth not checked");
#else
    QVERIFY(after200 < after20 + (24u << 20));  // the conversation's own text grows; the model's memory must not
#endif
    bool dropped = false;
    for (const auto& m : pane.messages().messages()) dropped |= m.kind == ChatMessage::Kind::Note;
    QVERIFY(dropped);  // the context filled up and the pane said so
  }
};

QTEST_MAIN(TestChat)
#include "test_chat.moc"
