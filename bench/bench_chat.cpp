// Benchmark of the chat pane against `entquant generate --chat` on the same model and machine, runs alternating:
// the pane's decode tokens/s as the GUI thread sees the answer arrive ((tokens - 1) / (answer done - first text)),
// its time to first token (send -> first text on the GUI thread) and the GUI thread's CPU time; the CLI's own
// prompt and generation tokens/s (--json). Greedy, the same prompt and answer length for both. Then as many pane-only
// runs for the GUI thread's longest gap while it generates (a 10 ms timer notes the gaps between its ticks).
//
//   QT_QPA_PLATFORM=offscreen bench_chat MODEL --entquant PATH/TO/entquant [--max-tokens 128] [--runs 3]
//                                        [--threads N] [--prompt-words N] [--hidden]
#include "chat/chat_pane.h"
#include "common/allocator.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTimer>

#include <algorithm>
#include <cstdio>

#include <unistd.h>
#include <vector>

using namespace eq::ui;

namespace {

// CPU seconds the GUI (main) thread has used: utime + stime of /proc/self/task/PID/stat.
double guiThreadCpu() {
  QFile f(QString("/proc/self/task/%1/stat").arg(QCoreApplication::applicationPid()));
  if (!f.open(QIODevice::ReadOnly)) return 0;
  const QByteArray line = f.readAll();
  const QList<QByteArray> fields = line.mid(line.lastIndexOf(')') + 2).split(' ');  // from field 3 (state) on
  return fields.size() > 12 ? (fields[11].toDouble() + fields[12].toDouble()) / sysconf(_SC_CLK_TCK) : 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// A prompt of about `words` words of plain prose (the same text for the pane and the CLI).
QString promptOf(int words) {
  const QStringList base = QString("Please read the following notes about the old harbour town and then tell me, in a "
                                   "long and careful answer, what a visitor should see first and why the fishing "
                                   "boats leave before dawn while the market opens late in the morning")
                               .split(' ');
  QStringList out;
  for (int i = 0; i < words; ++i) out << base[i % base.size()];
  return out.join(' ') + ".";
}

}  // namespace

int main(int argc, char** argv) {
  eq::keepFreedBuffers();  // as entquant-studio's main does (and the CLI's)
  QApplication app(argc, argv);
  const QStringList args = app.arguments();
  const auto option = [&](const char* name, const QString& fallback) {
    const int i = args.indexOf(name);
    return i > 0 && i + 1 < args.size() ? args[i + 1] : fallback;
  };
  if (args.size() < 2 || args.indexOf("--entquant") < 0) {
    std::fprintf(stderr, "usage: bench_chat MODEL --entquant PATH [--max-tokens 128] [--runs 3] [--threads N] "
                         "[--prompt-words N]\n");
    return 2;
  }
  const QString model = args[1], cli = option("--entquant", "");
  const int maxTokens = option("--max-tokens", "128").toInt(), runs = option("--runs", "3").toInt();
  const unsigned threads = option("--threads", "0").toUInt();
  const QString prompt = promptOf(option("--prompt-words", "48").toInt());

  ChatPane pane;
  pane.resize(900, 800);
  if (!args.contains("--hidden")) pane.show();  // --hidden: nothing painted, to tell the GUI's share
  QEventLoop loop;
  bool loaded = false;
  QObject::connect(&pane.engine(), &ChatEngine::loaded, [&] {
    loaded = true;
    loop.quit();
  });
  QObject::connect(&pane.engine(), &ChatEngine::loadFailed, [&](const JobError& e) {
    std::fprintf(stderr, "%s\n", qPrintable(e.message));
    loop.quit();
  });
  pane.chooseModel(model);
  if (threads) pane.engine().load(model, 2048, threads);
  else pane.loadChosen();
  loop.exec();
  if (!loaded) return 1;
  pane.setMaxTokens(maxTokens);
  pane.setSampling(eq::text::SamplingParams{0.0f});  // greedy, as entquant generate is unless asked

  // The GUI thread's gaps, noted while an answer is being generated.
  QElapsedTimer clock;
  clock.start();
  qint64 lastTick = 0, worstGap = 0;
  bool generating = false;
  QTimer ticker;
  QObject::connect(&ticker, &QTimer::timeout, [&] {
    const qint64 now = clock.elapsed();
    if (generating) worstGap = std::max(worstGap, now - lastTick);
    lastTick = now;
  });
  // The timer's 100 wake-ups a second cost the generation a few percent on a 2-core machine (both cores compute), so
  // the speeds are measured in a first round of runs without it, as the app runs, and the gaps in a second round of
  // pane-only runs with it.

  std::vector<double> paneDecode, paneTtft, paneReported, cliDecode, cliPrompt, panePrompt, guiLoad;
  std::int64_t paneTokens = 0, cliTokens = 0, promptTokens = 0;
  for (int run = 0; run < 2 * runs; ++run) {
    const bool gapRound = run >= runs;
    if (gapRound && !ticker.isActive()) ticker.start(10);
    // The pane: a fresh conversation, so that every run prefills the whole prompt.
    pane.clearConversation();
    qint64 sent = 0, first = -1, done = -1;
    ChatStats stats;
    auto c1 = QObject::connect(&pane.engine(), &ChatEngine::delta, [&] {
      if (first < 0) first = clock.elapsed();
    });
    auto c2 = QObject::connect(&pane.engine(), &ChatEngine::answered, [&](const ChatStats& s) {
      done = clock.elapsed();
      stats = s;
      loop.quit();
    });
    auto c3 = QObject::connect(&pane.engine(), &ChatEngine::answerFailed, [&](const JobError& e) {
      std::fprintf(stderr, "%s\n", qPrintable(e.message));
      loop.quit();
    });
    lastTick = sent = clock.elapsed();
    generating = true;
    const double cpu0 = guiThreadCpu();
    // A different first word each run, so that the pane cannot reuse the last run's cached prompt.
    pane.send(QString("Run %1. ").arg(run + 1) + prompt);
    loop.exec();
    generating = false;
    QObject::disconnect(c1);
    QObject::disconnect(c2);
    QObject::disconnect(c3);
    if (done < 0 || first < 0) return 1;
    if (gapRound) continue;
    if (done > sent) guiLoad.push_back((guiThreadCpu() - cpu0) / (static_cast<double>(done - sent) / 1000.0));
    paneTokens = stats.generatedTokens;
    promptTokens = stats.promptTokens;
    paneTtft.push_back(static_cast<double>(first - sent) / 1000.0);
    if (done > first && stats.generatedTokens > 1)
      paneDecode.push_back(static_cast<double>(stats.generatedTokens - 1) / (static_cast<double>(done - first) / 1000.0));
    paneReported.push_back(stats.tokensPerSecond());
    panePrompt.push_back(stats.promptTokensPerSecond());

    // The CLI, same prompt and settings.
    QProcess p;
    QStringList cargs{"generate", model, "--chat", "--prompt", QString("Run %1. ").arg(run + 1) + prompt, "--max-tokens", QString::number(maxTokens),
                      "--json"};
    if (threads) cargs << "--threads" << QString::number(threads);
    p.start(cli, cargs);
    while (!p.waitForFinished(50)) QCoreApplication::processEvents();
    const QJsonObject j = QJsonDocument::fromJson(p.readAllStandardOutput()).object();
    if (p.exitCode() != 0 || j.isEmpty()) {
      std::fprintf(stderr, "entquant generate failed: %s\n", p.readAllStandardError().constData());
      return 1;
    }
    cliDecode.push_back(j["generation_tokens_per_second"].toDouble());
    cliPrompt.push_back(j["prompt_tokens_per_second"].toDouble());
    cliTokens = static_cast<std::int64_t>(j["ids"].toArray().size());
  }
  std::printf("model %s: prompt %lld tokens, answers of %lld tokens (pane) and %lld (CLI); medians of %d runs, "
              "alternating; then %d pane runs with the 10 ms timer for the gaps\n\n",
              qPrintable(model), static_cast<long long>(promptTokens), static_cast<long long>(paneTokens),
              static_cast<long long>(cliTokens), runs, runs);
  std::printf("%-34s %10s %10s\n", "", "pane", "CLI");
  std::printf("%-34s %10.1f %10.1f\n", "decode tok/s (GUI-observed / CLI)", median(paneDecode), median(cliDecode));
  std::printf("%-34s %10.1f %10s\n", "decode tok/s (worker's own timing)", median(paneReported), "");
  std::printf("%-34s %10.1f %10.1f\n", "prompt tok/s", median(panePrompt), median(cliPrompt));
  std::printf("%-34s %10.3f %10s\n", "time to first token, s", median(paneTtft), "");
  std::printf("%-34s %10lld %10s\n", "GUI thread's worst gap, ms", static_cast<long long>(worstGap), "");
  std::printf("%-34s %10.1f %10s\n", "GUI thread's CPU while answering, %", 100.0 * median(guiLoad), "");
  std::printf("\npane decode vs CLI: %+.1f %%\n", 100.0 * (median(paneDecode) / median(cliDecode) - 1.0));
  return 0;
}
