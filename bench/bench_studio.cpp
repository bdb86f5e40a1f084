// Benchmark of the desktop app on a model (the demo model, or a synthetic 7B-shaped one from make_synthetic_model):
// time from the drop to the model's rows, to the first analyzed rows and to the full table; the time of a target
// change (plan, table and charts, repainted) over a sweep of targets; the GUI thread's longest pause while the
// analysis runs; and, with --compress, the predicted against the written size at each target.
//
//   QT_QPA_PLATFORM=offscreen bench_studio MODEL [--compress OUT_DIR --bits 2.1,3,4] [--threads N]
#include "main_window.h"
#include "models/layer_table_model.h"
#include "widgets/controls_panel.h"

#include <QApplication>
#include <QDropEvent>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFileInfo>
#include <QMimeData>
#include <QTimer>
#include <QUrl>

#include <algorithm>
#include <cstdio>
#include <vector>

using namespace eq::ui;

namespace {

// Runs the event loop (sleeping between events, as the app does) until `done` or `ms` pass; false on the timeout.
template <typename F>
bool runUntil(F done, int ms) {
  QEventLoop loop;
  QTimer poll;
  QElapsedTimer t;
  t.start();
  QObject::connect(&poll, &QTimer::timeout, [&] {
    if (done() || t.elapsed() > ms) loop.quit();
  });
  poll.start(20);
  if (!done()) loop.exec();
  return done();
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  const QStringList args = app.arguments();
  if (args.size() < 2) {
    std::fprintf(stderr, "usage: bench_studio MODEL [--compress OUT_DIR --bits 2.1,3,4] [--threads N]\n");
    return 2;
  }
  const QString model = args[1];
  const int ci = args.indexOf("--compress"), bi = args.indexOf("--bits"), ti = args.indexOf("--threads");
  MainWindow w;
  w.resize(1500, 950);
  w.show();
  ModelDocument& doc = w.document();
  if (ti > 0) doc.codeSettings().threads = args.value(ti + 1).toUInt();

  // The GUI thread's pauses: a 10 ms timer notes the gaps between its ticks.
  QElapsedTimer gapClock;
  qint64 worstGap = 0;
  QTimer ticker;
  QObject::connect(&ticker, &QTimer::timeout, [&] {
    if (gapClock.isValid()) worstGap = std::max(worstGap, gapClock.restart());
    else gapClock.start();
  });
  ticker.start(10);

  QElapsedTimer clock;
  qint64 opened = -1, firstRows = -1, analyzed = -1;
  QObject::connect(&doc, &ModelDocument::modelOpened, [&] { opened = clock.elapsed(); });
  QObject::connect(&doc, &ModelDocument::tensorsAnalyzed, [&] {
    if (firstRows < 0) firstRows = clock.elapsed();
  });
  QObject::connect(&doc, &ModelDocument::analysisFinished, [&] { analyzed = clock.elapsed(); });
  QMimeData mime;
  mime.setUrls({QUrl::fromLocalFile(QFileInfo(model).absoluteFilePath())});
  QDragEnterEvent enter(QPoint(300, 300), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(&w, &enter);  // (a drop is delivered after the drag entered, as on a desktop)
  clock.start();
  QDropEvent drop(QPointF(300, 300), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(&w, &drop);
  if (!runUntil([&] { return analyzed >= 0; }, 30 * 60 * 1000)) {
    std::fprintf(stderr, "the analysis did not finish\n");
    return 1;
  }
  std::printf("model            %s: %d compressible tensors\n", qPrintable(model), w.table().rowCount());
  std::printf("drop -> rows     %lld ms (the model opened, every row listed)\n", static_cast<long long>(opened));
  std::printf("drop -> first analyzed rows  %lld ms\n", static_cast<long long>(firstRows));
  std::printf("drop -> full table           %lld ms\n", static_cast<long long>(analyzed));
  std::printf("GUI thread's worst pause during open and analysis: %lld ms\n", static_cast<long long>(worstGap));

  // Target changes: the plan (allocation over the cached curves), the table and the charts, repainted.
  std::vector<double> times;
  for (double b = 1.6; b <= 7.0; b += 0.1) {
    QElapsedTimer t;
    t.start();
    w.controls().setTargetBits(b);
    w.repaint();  // the table's visible rows and the depth chart, drawn now
    QApplication::processEvents();
    times.push_back(static_cast<double>(t.nsecsElapsed()) / 1e6);
  }
  std::sort(times.begin(), times.end());
  std::printf("target change -> plan, table, charts repainted: median %.1f ms, worst %.1f ms over %zu changes\n",
              times[times.size() / 2], times.back(), times.size());
  // the baseline of the same run: planBits alone (the allocation over the cached curves and the predictions)
  std::vector<double> plans;
  eq::PlanSettings settings = doc.settings();
  for (double b = 1.6; b <= 7.0; b += 0.1) {
    settings.target.value = b;
    QElapsedTimer t;
    t.start();
    const eq::Plan p = eq::planBits(doc.analysis(), settings);
    plans.push_back(static_cast<double>(t.nsecsElapsed()) / 1e6);
  }
  std::sort(plans.begin(), plans.end());
  std::printf("planBits alone: median %.2f ms, worst %.2f ms\n", plans[plans.size() / 2], plans.back());

  if (ci > 0) {
    const QString outDir = args.value(ci + 1);
    const QStringList bits = (bi > 0 ? args.value(bi + 1) : QString("2.1,3,4")).split(',');
    for (const QString& b : bits) {
      w.controls().setTargetBits(b.toDouble());
      const auto predicted = doc.plan()->predictedFileBytes;
      const QString out = outDir + QStringLiteral("/bench-%1.eqz").arg(b);
      bool done = false, failed = false;
      auto c1 = QObject::connect(&doc, &ModelDocument::compressFinished, [&] { done = true; });
      auto c2 = QObject::connect(&doc, &ModelDocument::compressFailed, [&](const JobError& e) {
        std::fprintf(stderr, "%s\n", qPrintable(e.message));
        failed = true;
      });
      worstGap = 0;
      gapClock.invalidate();
      QElapsedTimer t;
      t.start();
      w.compressTo(out);
      runUntil([&] { return done || failed; }, 4 * 3600 * 1000);
      QObject::disconnect(c1);
      QObject::disconnect(c2);
      if (failed) return 1;
      const auto written = static_cast<unsigned long long>(QFileInfo(out).size());
      std::printf("%s bits: predicted %llu, written %llu bytes (%+.2f %%), %.1f s, GUI worst pause %lld ms\n",
                  qPrintable(b), static_cast<unsigned long long>(predicted), written,
                  100.0 * (static_cast<double>(predicted) / static_cast<double>(written) - 1), t.elapsed() / 1000.0,
                  static_cast<long long>(worstGap));
      QFile::remove(out);
    }
  }
  return 0;
}
