// EntQuant Studio's window on the offscreen platform, driven as a user would: drop a folder, read the table, move
// the target, add a rule, drag a bar, compress (and cancel), open an .eqz, save a plan that the CLI compresses to the
// same bytes; and the GUI thread never stalls while the workers run.
#include "main_window.h"
#include "models/layer_filter_model.h"
#include "models/layer_table_model.h"
#include "models/rule_list_model.h"
#include "pipeline/demo_model.h"
#include "save_file.h"
#include "plots/curve_plot.h"
#include "plots/depth_chart.h"
#include "test_util.h"
#include "widgets/controls_panel.h"
#include "widgets/job_status.h"
#include "widgets/layer_plots.h"
#include "widgets/message_banner.h"
#include "widgets/overview_panel.h"
#include "widgets/rules_editor.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QMimeData>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableView>
#include <QTemporaryDir>
#include <QTimer>
#include <QUrl>

#include <cstring>

using namespace eq;
using namespace eq::ui;
namespace fs = std::filesystem;

namespace {

QString demo() { return QString::fromStdString(demoModelPath().string()); }

// Waits (running the event loop) until the document is analyzed.
bool waitAnalyzed(MainWindow& w, int ms = 120000) {
  if (w.document().analysisComplete()) return true;
  QSignalSpy done(&w.document(), &ModelDocument::analysisFinished);
  return done.wait(ms);
}

bool openAndAnalyze(MainWindow& w, const QString& path) {
  QSignalSpy opened(&w.document(), &ModelDocument::modelOpened);
  w.openPath(path);
  return opened.wait(60000) && waitAnalyzed(w);
}

// The sections of an .eqz file (between the preamble and the index, which hold the timings).
std::string sectionsOf(const QString& path) {
  const std::string b = eqtest::readText(path.toStdString());
  std::uint64_t indexOffset = 0;
  std::memcpy(&indexOffset, b.data() + 16, 8);
  return b.substr(64, indexOffset - 64);
}

// The longest pause of the GUI thread's event loop while it lives: a 10 ms timer notes the gaps between its ticks.
class GapMeter {
 public:
  GapMeter() {
    timer_.setInterval(10);
    QObject::connect(&timer_, &QTimer::timeout, [this] {
      if (clock_.isValid()) worst_ = std::max(worst_, clock_.restart());
      else clock_.start();
    });
    timer_.start();
  }
  qint64 worstMs() const { return worst_; }

 private:
  QTimer timer_;
  QElapsedTimer clock_;
  qint64 worst_ = 0;
};

}  // namespace

class TestStudio : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  qint64 worstGap_ = 0;

  QString out(const QString& name) const { return tmp_.filePath(name); }

 private slots:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

  void dropFillsTheTable() {
    MainWindow w;
    w.show();
    GapMeter gaps;
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(demo())});
    QDragEnterEvent enter(QPoint(200, 200), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&w, &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(200, 200), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QSignalSpy opened(&w.document(), &ModelDocument::modelOpened);
    QApplication::sendEvent(&w, &drop);
    QVERIFY(opened.wait(60000));
    QCOMPARE(w.table().rowCount(), 56);  // one row per compressible tensor of the demo model
    QVERIFY(waitAnalyzed(w));
    worstGap_ = std::max(worstGap_, gaps.worstMs());
    for (int r = 0; r < w.table().rowCount(); ++r)
      QCOMPARE(w.table().index(r, LayerTableModel::Status).data().toString(), QString("planned"));
    QVERIFY(w.overview().text().contains("LlamaForCausalLM"));
    QVERIFY(w.overview().text().contains("11,474,240 total"));
    QVERIFY2(w.overview().text().contains("Chat template"), qPrintable(w.overview().text()));
    QVERIFY(w.totalsText().startsWith("Predicted: "));
  }

  void badModelKeepsTheOpenOne() {
    MainWindow w;
    w.show();
    QVERIFY(openAndAnalyze(w, demo()));
    const QString corrupt = QString::fromStdString((eqtest::dataDir() / "corrupt/truncated.safetensors").string());
    QSignalSpy failed(&w.document(), &ModelDocument::openFailed);
    w.openPath(corrupt);
    QVERIFY(failed.wait(30000));
    QVERIFY2(w.banner().isVisible() && w.banner().text().startsWith(corrupt + ": tensor"), qPrintable(w.banner().text()));
    QCOMPARE(w.document().path(), demo());  // still the demo model
    QCOMPARE(w.table().rowCount(), 56);
  }

  void targetMovesThePredictedSizeMonotonically() {
    MainWindow w;
    w.show();
    QVERIFY(openAndAnalyze(w, demo()));
    std::uint64_t last = 0;
    QElapsedTimer clock;
    qint64 slowest = 0;
    for (double b = 1.6; b <= 7.01; b += 0.2) {
      clock.start();
      w.controls().setTargetBits(b);  // the slider's spin box, as a user types
      slowest = std::max(slowest, clock.elapsed());
      const std::uint64_t size = w.document().plan()->predictedFileBytes;
      QVERIFY2(size > last, qPrintable(QString("%1 bits: %2 after %3").arg(b).arg(size).arg(last)));
      last = size;
    }
    qInfo("slowest target update, plan and table included: %lld ms", static_cast<long long>(slowest));
  }

  void aRuleChangesOnlyItsRows() {
    MainWindow w;
    w.show();
    QVERIFY(openAndAnalyze(w, demo()));
    w.controls().setTargetBits(3.0);
    std::vector<QString> before;
    for (int r = 0; r < w.table().rowCount(); ++r)
      before.push_back(w.table().index(r, LayerTableModel::Target).data().toString());
    QString error;
    QVERIFY(w.rules().model().setRule(-1, "layers\\.3\\.mlp=keep", &error));
    QVERIFY(w.rules().model().setRule(-1, "v_proj=5", &error));
    QVERIFY(!w.rules().model().setRule(-1, "mlp", &error));
    QCOMPARE(error, QString("\"mlp\": expected REGEX=BITS or REGEX=keep"));
    QCOMPARE(w.rules().model().rowCount(), 2);
    // uniform keeps the other rows exactly as they were
    PlanSettings s = w.document().settings();
    s.allocation = Allocation::Uniform;
    w.document().setSettings(s);
    for (int r = 0; r < w.table().rowCount(); ++r) {
      const QString name = w.table().tensorAt(r);
      const QString target = w.table().index(r, LayerTableModel::Target).data().toString();
      if (name.contains("layers.3.mlp")) QCOMPARE(target, QString("keep"));
      else if (name.contains("v_proj")) QCOMPARE(target, QString("5.00 *"));
      else QCOMPARE(target, QString("3.00"));
    }
    Q_UNUSED(before);
    // the filter
    w.filter().setFilter("layers.1[0-5]?\\.mlp", true);
    QCOMPARE(w.filter().rowCount(), 3);
    w.filter().setFilter("down_proj", false);
    QCOMPARE(w.filter().rowCount(), 8);
  }

  void dragOnTheDepthChart() {
    MainWindow w;
    w.resize(1400, 900);
    w.show();
    QVERIFY(openAndAnalyze(w, demo()));
    w.tabs().setCurrentIndex(1);
    DepthChart& chart = w.depthChart();
    chart.replot();
    QApplication::processEvents();
    const QString layer = "model.layers.4.self_attn.o_proj.weight";
    const QPointF top = chart.barTop(layer);
    QVERIFY(top.x() >= 0);
    const QPointF press(top.x(), top.y() + 5);  // inside the bar
    const double to = chart.yAxis->coordToPixel(5.5);
    QMouseEvent down(QEvent::MouseButtonPress, press, chart.mapToGlobal(press), Qt::LeftButton, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&chart, &down);
    QCOMPARE(chart.selection(), QStringList{layer});
    const QPointF drop(press.x(), to);
    QMouseEvent move(QEvent::MouseMove, drop, chart.mapToGlobal(drop), Qt::NoButton, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&chart, &move);
    QMouseEvent up(QEvent::MouseButtonRelease, drop, chart.mapToGlobal(drop), Qt::LeftButton, Qt::NoButton, Qt::NoModifier);
    QApplication::sendEvent(&chart, &up);
    const PlannedTensor* t = w.document().plan()->find(layer.toStdString());
    QVERIFY(t && t->ruled && t->target);
    QVERIFY2(std::fabs(t->target->value - 5.5) < 0.1, qPrintable(QString::number(t->target->value)));
    // the table follows the chart's selection, and the layer plots show it
    QCOMPARE(w.layerPlots().layer(), layer);
    // keep the total: the others give up what the dragged layer took
    PlanSettings s = w.document().settings();
    s.holdTotal = true;
    w.document().setSettings(s);
    QVERIFY(std::fabs(*w.document().plan()->predictedEffectiveBits - 3.0) < 0.01);
  }

  void curveDragSetsTheLayersBits() {
    MainWindow w;
    w.resize(1400, 900);
    w.show();
    QVERIFY(openAndAnalyze(w, demo()));
    const QString layer = "model.layers.2.mlp.up_proj.weight";
    w.selectLayer(layer);
    w.tabs().setCurrentIndex(0);
    QApplication::processEvents();
    CurvePlot& curve = w.layerPlots().curve();
    curve.replot();
    QSignalSpy chosen(&curve, &CurvePlot::bitsChosen);
    const auto& pt = *curve.graph(1)->data()->constBegin();
    const QPointF at(curve.xAxis->coordToPixel(pt.key), curve.yAxis->coordToPixel(pt.value));
    const QPointF to(curve.xAxis->coordToPixel(4.0), at.y());
    QMouseEvent down(QEvent::MouseButtonPress, at, curve.mapToGlobal(at), Qt::LeftButton, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&curve, &down);
    QMouseEvent up(QEvent::MouseButtonRelease, to, curve.mapToGlobal(to), Qt::LeftButton, Qt::NoButton, Qt::NoModifier);
    QApplication::sendEvent(&curve, &up);
    QCOMPARE(chosen.count(), 1);
    const PlannedTensor* t = w.document().plan()->find(layer.toStdString());
    QVERIFY(std::fabs(t->target->value - 4.0) < 0.05);
    // the histograms arrive from the worker
    if (!w.document().layerDetail().name.empty() && w.document().layerDetail().name == layer.toStdString()) return;
    QSignalSpy detail(&w.document(), &ModelDocument::layerDetailReady);
    QVERIFY(detail.wait(30000));
  }

  void compressAndMeasure() {
    MainWindow w;
    w.show();
    GapMeter gaps;
    QVERIFY(openAndAnalyze(w, demo()));
    w.controls().setTargetBits(2.1);
    const std::uint64_t predicted = w.document().plan()->predictedFileBytes;
    QSignalSpy done(&w.document(), &ModelDocument::compressFinished);
    int lastPercent = 0;
    connect(&w.document(), &ModelDocument::compressProgress, this, [&] { lastPercent = w.jobStatus().percent(); });
    w.compressTo(out("app.eqz"));
    QVERIFY(done.wait(120000));
    worstGap_ = std::max(worstGap_, gaps.worstMs());
    QCOMPARE(lastPercent, 100);
    QVERIFY(QFile::exists(out("app.eqz")));
    const auto written = static_cast<std::uint64_t>(QFileInfo(out("app.eqz")).size());
    qInfo("2.1 bits: predicted %llu, written %llu bytes", static_cast<unsigned long long>(predicted),
          static_cast<unsigned long long>(written));
    QVERIFY(std::fabs(double(predicted) / double(written) - 1) < 0.02);
    QVERIFY(w.banner().text().startsWith("Compressed to "));
    // the table shows what was measured
    const QString measured = w.table().index(0, LayerTableModel::MeasuredBits).data().toString();
    QVERIFY2(!measured.isEmpty(), "no measured bits");
    QCOMPARE(w.table().index(0, LayerTableModel::Status).data().toString(), QString("compressed"));
  }

  void cancelLeavesNoFile() {
    MainWindow w;
    w.show();
    QVERIFY(openAndAnalyze(w, demo()));
    QSignalSpy cancelled(&w.document(), &ModelDocument::compressCancelled);
    bool once = false;
    connect(&w.document(), &ModelDocument::compressProgress, this, [&] {
      if (!once) once = true, w.document().cancelCompress();
    });
    w.compressTo(out("cancelled.eqz"));
    QVERIFY(cancelled.wait(60000));
    QVERIFY(!QFile::exists(out("cancelled.eqz")));
    QVERIFY(w.jobStatus().text().startsWith("Cancelled"));
  }

  void eqzOpensWithMeasuredValues() {
    if (!QFile::exists(out("app.eqz"))) QSKIP("needs compressAndMeasure's file");
    MainWindow w;
    w.show();
    QSignalSpy opened(&w.document(), &ModelDocument::modelOpened);
    w.openPath(out("app.eqz"));
    QVERIFY(opened.wait(30000));
    QVERIFY(w.document().isEqz());
    QCOMPARE(w.table().rowCount(), 56);
    for (int r = 0; r < w.table().rowCount(); ++r) {
      QVERIFY(!w.table().index(r, LayerTableModel::MeasuredBits).data().toString().isEmpty());
      QVERIFY(!w.table().index(r, LayerTableModel::Entropy).data().toString().isEmpty());
      QCOMPARE(w.table().index(r, LayerTableModel::Status).data().toString(), QString("compressed"));
    }
    QVERIFY(w.overview().text().contains("Compressed"));
    QSignalSpy decompressed(&w.document(), &ModelDocument::decompressFinished);
    w.document().decompress(out("decompressed"));
    QVERIFY(decompressed.wait(60000));
    QVERIFY(QFile::exists(out("decompressed/model.safetensors")));
  }

  // A plan saved by the app, compressed by the CLI: the same bytes as the app's own compression.
  void appAndCliWriteTheSameBytes() {
    MainWindow w;
    w.show();
    QVERIFY(openAndAnalyze(w, demo()));
    w.controls().setTargetBits(2.5);
    w.document().setTensorBits({"model.layers.0.mlp.down_proj.weight"}, 4.0);
    w.document().setTensorBits({"model.layers.7.self_attn.q_proj.weight"}, std::nullopt);
    PlanSettings s = w.document().settings();
    s.holdTotal = true;
    w.document().setSettings(s);
    w.document().savePlan(out("app.plan.json"));
    const Plan saved = Plan::fromJson(eqtest::readJson(out("app.plan.json").toStdString()), "p");
    QCOMPARE(saved.toJson().dump(), w.document().plan()->toJson().dump());
    QSignalSpy done(&w.document(), &ModelDocument::compressFinished);
    w.compressTo(out("app-plan.eqz"));
    QVERIFY(done.wait(120000));
    const auto r = eqtest::runCli({"compress", demo(), "--plan", out("app.plan.json"), "-o", out("cli-plan.eqz"), "--quiet"});
    QCOMPARE(r.code, 0);
    QVERIFY(sectionsOf(out("app-plan.eqz")) == sectionsOf(out("cli-plan.eqz")));
    // loading the plan back gives the same settings and plan
    MainWindow other;
    QVERIFY(openAndAnalyze(other, demo()));
    other.document().loadPlan(out("app.plan.json"));
    const std::string a = other.document().plan()->toJson().dump(), b = saved.toJson().dump();
    std::size_t at = 0;
    while (at < a.size() && at < b.size() && a[at] == b[at]) ++at;
    QVERIFY2(a == b, (a.substr(at > 80 ? at - 80 : 0, 200) + "\n" + b.substr(at > 80 ? at - 80 : 0, 200)).c_str());
  }

  // The GUI thread's longest pause while analysis and compression ran (dropFillsTheTable, compressAndMeasure): a
  // gap over a second would mean a blocking call on it.
  // Exports are all or nothing: a failed write names the file and leaves what was there.
  void exportsAreAllOrNothing() {
    QTemporaryDir dir;
    const QString file = dir.filePath("table.csv");
    QCOMPARE(eq::ui::saveFile(file, "first\n"), QString());
    QCOMPARE(eq::ui::saveFile(file, "second\n"), QString());
    QFile in(file);
    QVERIFY(in.open(QIODevice::ReadOnly));
    QCOMPARE(in.readAll(), QByteArray("second\n"));
    const QString missing = dir.filePath("no-such-folder/table.csv");
    const QString error = eq::ui::saveFile(missing, "x");
    QVERIFY2(error.startsWith(missing + ": cannot be written ("), qPrintable(error));
    QVERIFY(!QFile::exists(missing));
  }

  void guiThreadNeverBlocks() {
    qInfo("worst gap of the GUI thread's event loop while workers ran: %lld ms", static_cast<long long>(worstGap_));
    QVERIFY2(worstGap_ < 1000, qPrintable(QString::number(worstGap_)));
  }
};

QTEST_MAIN(TestStudio)
#include "test_studio.moc"
