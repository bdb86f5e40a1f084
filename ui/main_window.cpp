#include "main_window.h"
#include "save_file.h"

#include "chat/ab_pane.h"
#include "chat/chat_pane.h"
#include "common/cpu_isa.h"
#include "common/error.h"
#include "common/units.h"
#include "models/layer_filter_model.h"
#include "models/layer_table_model.h"
#include "plots/depth_chart.h"
#include "widgets/controls_panel.h"
#include "widgets/job_status.h"
#include "widgets/layer_plots.h"
#include "widgets/message_banner.h"
#include "widgets/overview_panel.h"
#include "widgets/quality_card.h"
#include "widgets/rules_editor.h"

#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QDesktopServices>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QIcon>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QScrollArea>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>
#include <QToolBar>
#include <QUrl>
#include <QVBoxLayout>

#include <cmath>

namespace eq::ui {
namespace {

constexpr int kMaxRecent = 10;

QString bytesText(std::uint64_t b) { return QString::fromStdString(formatBytes(b)); }

}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setWindowTitle(tr("EntQuant Studio"));
  setAcceptDrops(true);
  buildActions();
  buildUi();
  connectDocument();
  readSettings();
  refreshActions();
  refreshTotals();
}

MainWindow::~MainWindow() = default;

void MainWindow::buildActions() {
  auto make = [this](const QString& text, const QKeySequence& key, const QString& tip, auto slot) {
    auto* a = new QAction(text, this);
    if (!key.isEmpty()) a->setShortcut(key);
    a->setToolTip(tip + (key.isEmpty() ? QString() : QStringLiteral(" (%1)").arg(key.toString(QKeySequence::NativeText))));
    a->setStatusTip(tip);
    connect(a, &QAction::triggered, this, slot);
    return a;
  };
  openFolder_ = make(tr("Open &Folder..."), QKeySequence::Open, tr("Open a HuggingFace model folder"),
                     [this] { chooseAndOpen(true); });
  openFile_ = make(tr("Open F&ile..."), QKeySequence(tr("Ctrl+Shift+O")),
                   tr("Open a .safetensors file, an archive of a model folder or an .eqz file"),
                   [this] { chooseAndOpen(false); });
  savePlan_ = make(tr("&Save Plan..."), QKeySequence::Save,
                   tr("Save the plan (target, rules, options, every layer's bits) as JSON for entquant compress --plan"),
                   [this] {
                     const QString f = QFileDialog::getSaveFileName(this, tr("Save plan"),
                                                                    QFileInfo(doc_.path()).completeBaseName() + ".plan.json",
                                                                    tr("Plan (*.json)"));
                     if (f.isEmpty()) return;
                     try {
                       doc_.savePlan(f);
                       status_->end(tr("Plan saved to %1").arg(f));
                     } catch (const Error& e) {
                       banner_->showMessage(MessageBanner::Kind::Error, QString::fromStdString(e.what()));
                     }
                   });
  loadPlan_ = make(tr("&Load Plan..."), QKeySequence(tr("Ctrl+L")), tr("Take the settings and rules of a saved plan"),
                   [this] {
                     const QString f = QFileDialog::getOpenFileName(this, tr("Load plan"), QString(), tr("Plan (*.json)"));
                     if (f.isEmpty()) return;
                     try {
                       doc_.loadPlan(f);
                     } catch (const Error& e) {
                       banner_->showMessage(MessageBanner::Kind::Error, QString::fromStdString(e.what()));
                     }
                   });
  exportTable_ = make(tr("&Export Table..."), QKeySequence(tr("Ctrl+E")), tr("Write the layer table as CSV or JSON"),
                      [this] { exportTable(); });
  compress_ = make(tr("&Compress..."), QKeySequence(tr("Ctrl+Return")),
                   tr("Compress the model with this plan into an .eqz file"), [this] { compress(); });
  decompress_ = make(tr("&Decompress..."), QKeySequence(tr("Ctrl+D")),
                     tr("Write a HuggingFace folder (bf16 safetensors) from the open .eqz file"), [this] { decompress(); });
  cancel_ = make(tr("Ca&ncel"), QKeySequence(Qt::Key_Escape), tr("Stop the job that runs"), [this] {
    doc_.cancelOpen();
    doc_.cancelCompress();
    doc_.cancelAnalysis();
  });
  setBits_ = make(tr("Set &Bits for Selection..."), QKeySequence(tr("Ctrl+B")),
                  tr("Give the selected layers a number of bits (a rule each)"), [this] { setBitsForSelection(); });
  keep_ = make(tr("&Keep Selection"), QKeySequence(tr("Ctrl+K")), tr("Store the selected layers as they are"), [this] {
    if (const QStringList s = selectedTensors(); !s.isEmpty()) doc_.setTensorBits(s, std::nullopt);
  });
  quit_ = make(tr("&Quit"), QKeySequence::Quit, tr("Quit EntQuant Studio"), [this] { close(); });
  about_ = make(tr("&About EntQuant Studio"), QKeySequence(), tr("Versions and build"), [this] { about(); });

  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(openFolder_);
  file->addAction(openFile_);
  recentMenu_ = file->addMenu(tr("Open &Recent"));
  file->addSeparator();
  file->addAction(loadPlan_);
  file->addAction(savePlan_);
  file->addAction(exportTable_);
  file->addSeparator();
  file->addAction(compress_);
  file->addAction(decompress_);
  file->addAction(cancel_);
  file->addSeparator();
  file->addAction(quit_);
  QMenu* edit = menuBar()->addMenu(tr("&Layers"));
  edit->addAction(setBits_);
  edit->addAction(keep_);
  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(about_);

  // the desktop theme's icons where it has them (they scale on high-DPI screens); the toolbar shows text beside them
  openFolder_->setIcon(QIcon::fromTheme("folder-open"));
  openFile_->setIcon(QIcon::fromTheme("document-open"));
  savePlan_->setIcon(QIcon::fromTheme("document-save"));
  compress_->setIcon(QIcon::fromTheme("archive-insert", QIcon::fromTheme("package-x-generic")));
  cancel_->setIcon(QIcon::fromTheme("process-stop"));
  QToolBar* bar = addToolBar(tr("Main"));
  bar->setObjectName("mainToolBar");
  bar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  for (QAction* a : {openFolder_, openFile_, compress_, cancel_}) bar->addAction(a);
}

void MainWindow::buildUi() {
  // The table, its filter and the totals.
  table_ = new LayerTableModel(doc_, this);
  filter_ = new LayerFilterModel(this);
  filter_->setSourceModel(table_);
  view_ = new QTableView;
  view_->setModel(filter_);
  view_->setSortingEnabled(true);
  view_->sortByColumn(-1, Qt::AscendingOrder);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  view_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed |
                         QAbstractItemView::AnyKeyPressed);
  view_->verticalHeader()->hide();
  view_->verticalHeader()->setDefaultSectionSize(view_->fontMetrics().height() + 6);
  view_->horizontalHeader()->setStretchLastSection(true);
  view_->setAlternatingRowColors(true);
  view_->setWordWrap(false);
  filterEdit_ = new QLineEdit;
  filterEdit_->setPlaceholderText(tr("Filter layers by name (e.g. mlp, layers.1[0-5])"));
  filterEdit_->setClearButtonEnabled(true);
  filterEdit_->setAcceptDrops(false);
  filterRegex_ = new QCheckBox(tr("regex"));
  auto* filterRow = new QHBoxLayout;
  filterRow->addWidget(filterEdit_, 1);
  filterRow->addWidget(filterRegex_);
  totals_ = new QLabel;
  totals_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  banner_ = new MessageBanner;
  auto* tableArea = new QWidget;
  auto* tableLayout = new QVBoxLayout(tableArea);
  tableLayout->setContentsMargins(4, 4, 4, 0);
  tableLayout->addWidget(banner_);
  tableLayout->addLayout(filterRow);
  tableLayout->addWidget(view_, 1);
  tableLayout->addWidget(totals_);

  // The plots: the selected layer, the whole model along depth (and later the chat).
  plots_ = new LayerPlots(doc_);
  depth_ = new DepthChart;
  tabs_ = new QTabWidget;
  tabs_->addTab(plots_, tr("Layer"));
  tabs_->addTab(depth_, tr("Depth"));
  chat_ = new ChatPane;
  tabs_->addTab(chat_, tr("Chat"));
  ab_ = new AbPane;
  tabs_->addTab(ab_, tr("A/B"));
  quality_ = new QualityCard(doc_);
  tabs_->addTab(quality_, tr("Quality"));
  tabs_->setCurrentIndex(1);
  auto* split = new QSplitter(Qt::Vertical);
  split->setObjectName("mainSplitter");
  split->addWidget(tableArea);
  split->addWidget(tabs_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  setCentralWidget(split);

  // The model and the controls, in a dock.
  overview_ = new OverviewPanel(doc_);
  controls_ = new ControlsPanel(doc_);
  rules_ = new RulesEditor(doc_);
  auto* side = new QWidget;
  auto* sideLayout = new QVBoxLayout(side);
  auto group = [](const QString& title, QWidget* w) {
    auto* g = new QGroupBox(title);
    auto* l = new QVBoxLayout(g);
    l->setContentsMargins(6, 6, 6, 6);
    l->addWidget(w);
    return g;
  };
  sideLayout->addWidget(group(tr("Model"), overview_));
  sideLayout->addWidget(group(tr("Compression"), controls_));
  sideLayout->addWidget(group(tr("Rules (later ones win)"), rules_), 1);
  auto* scroll = new QScrollArea;
  scroll->setWidget(side);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);  // the panels wrap to the dock's width
  side->setMinimumWidth(360);
  auto* dock = new QDockWidget(tr("Model and settings"));
  dock->setObjectName("settingsDock");
  dock->setWidget(scroll);
  dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
  addDockWidget(Qt::LeftDockWidgetArea, dock);
  dock->setMinimumWidth(380);

  status_ = new JobStatus;
  statusBar()->addWidget(status_, 1);
  connect(status_, &JobStatus::cancelRequested, cancel_, &QAction::trigger);

  connect(filterEdit_, &QLineEdit::textChanged, this, [this] {
    filter_->setFilter(filterEdit_->text(), filterRegex_->isChecked());
    filterEdit_->setStyleSheet(filter_->valid() ? QString() : "background: #fdecea");
  });
  connect(filterRegex_, &QCheckBox::toggled, this, [this] { filter_->setFilter(filterEdit_->text(), filterRegex_->isChecked()); });
  connect(view_->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] {
    if (syncingSelection_) return;
    const QStringList names = selectedTensors();
    syncingSelection_ = true;
    depth_->setSelection(names);
    syncingSelection_ = false;
    const QModelIndex current = view_->currentIndex();
    plots_->showLayer(current.isValid() ? table_->tensorAt(filter_->mapToSource(current).row())
                                        : (names.isEmpty() ? QString() : names.front()));
  });
  connect(depth_, &DepthChart::selectionChanged, this, [this](const QStringList& names) {
    if (syncingSelection_) return;
    syncingSelection_ = true;
    view_->clearSelection();
    for (const QString& n : names) {
      const QModelIndex i = filter_->mapFromSource(table_->index(table_->rowOf(n), 0));
      if (i.isValid()) view_->selectionModel()->select(i, QItemSelectionModel::Select | QItemSelectionModel::Rows);
    }
    syncingSelection_ = false;
    if (!names.isEmpty()) {
      plots_->showLayer(names.back());
      view_->scrollTo(filter_->mapFromSource(table_->index(table_->rowOf(names.back()), 0)));
    }
  });
  connect(depth_, &DepthChart::barsDragged, this,
          [this](const QStringList& names, double bits) { doc_.setTensorBits(names, bits); });
  connect(depth_, &DepthChart::barsDropped, this,
          [this](const QStringList& names, double bits) { doc_.setTensorBits(names, bits); });
}

void MainWindow::connectDocument() {
  connect(&doc_, &ModelDocument::openStarted, this, [this](const QString& path) {
    status_->begin(tr("Opening %1...").arg(path));
    refreshActions();
  });
  connect(&doc_, &ModelDocument::openProgress, status_, &JobStatus::show);
  connect(&doc_, &ModelDocument::openFailed, this, [this](const QString& path, const JobError& e) {
    status_->end(tr("Could not open %1").arg(path));
    banner_->showMessage(MessageBanner::Kind::Error, e.message);
    refreshActions();
  });
  connect(&doc_, &ModelDocument::openCancelled, this, [this] {
    status_->end(tr("Opening cancelled"));
    refreshActions();
  });
  connect(&doc_, &ModelDocument::modelOpened, this, [this] {
    banner_->hide();
    if (doc_.isEqz()) {
      chat_->setCandidates({}, doc_.path());
      // the model it was compressed from, where the file says and it is still there
      const auto& index = doc_.model().session->eqz()->index();
      if (index.contains("source") && index["source"].is_object() && index["source"].contains("input") &&
          index["source"]["input"].is_string()) {
        const QString source = QString::fromStdString(index["source"]["input"].get<std::string>());
        if (QFileInfo::exists(source)) setComparison(source, doc_.path());
      }
    } else {
      chat_->setCandidates(doc_.path(), {});
    }
    addRecent(doc_.path());
    setWindowTitle(tr("%1 - EntQuant Studio").arg(QFileInfo(doc_.path()).fileName()));
    view_->resizeColumnsToContents();
    plots_->showLayer({});
    controls_->setEnabled(!doc_.isEqz());  // an .eqz file is compressed already: nothing to plan
    rules_->setEnabled(!doc_.isEqz());
    if (doc_.isEqz()) status_->end(tr("Opened %1: the values compress measured, from its index").arg(doc_.path()));
    else status_->begin(tr("Analyzing..."));
    refreshDepthChart();
    refreshActions();
  });
  connect(&doc_, &ModelDocument::analysisProgress, status_, &JobStatus::show);
  connect(&doc_, &ModelDocument::analysisFinished, this, [this] {
    status_->end(tr("Analysis done in %1: set the target and the rules, then compress")
                     .arg(QString::fromStdString(formatDuration(doc_.analysis().seconds))));
    view_->resizeColumnsToContents();
    refreshActions();
  });
  connect(&doc_, &ModelDocument::analysisFailed, this, [this](const JobError& e) {
    status_->end(tr("Analysis failed"));
    banner_->showMessage(MessageBanner::Kind::Error, e.message);
    refreshActions();
  });
  connect(&doc_, &ModelDocument::analysisCancelled, this, [this] {
    status_->end(tr("Analysis cancelled: the plan stays uniform until it runs again (change the format or objective)"));
    refreshActions();
  });
  connect(&doc_, &ModelDocument::planChanged, this, [this] {
    refreshTotals();
    refreshDepthChart();
    refreshActions();
  });
  connect(&doc_, &ModelDocument::compressProgress, status_, &JobStatus::show);
  connect(&doc_, &ModelDocument::compressFinished, this, [this](const QString& output) {
    refreshActions();
    refreshTotals();
    refreshDepthChart();
    if (!doc_.lastSummary()) return;
    const CompressSummary& s = *doc_.lastSummary();
    status_->end(tr("Compressed to %1").arg(output));
    auto* openResult = new QAction(tr("Open result"), banner_);
    connect(openResult, &QAction::triggered, this, [this, output] { openPath(output); });
    chat_->setCandidates(doc_.path(), output);
    setComparison(doc_.path(), output);
    auto* chatWith = new QAction(tr("Chat with it"), banner_);
    connect(chatWith, &QAction::triggered, this, [this, output] {
      chat_->chooseModel(output);
      chat_->loadChosen();
      tabs_->setCurrentWidget(chat_);
    });
    auto* showFolder = new QAction(tr("Show in folder"), banner_);
    connect(showFolder, &QAction::triggered, this, [output] {
      QDesktopServices::openUrl(QUrl::fromLocalFile(QFileInfo(output).absolutePath()));
    });
    const double off = s.predictedBytes ? 100.0 * (static_cast<double>(s.predictedBytes) / static_cast<double>(s.outputBytes) - 1) : 0;
    banner_->showMessage(
        MessageBanner::Kind::Info,
        tr("Compressed to %1: %2 -> %3 (%4x smaller), %5 effective bits per compressed weight, in %6. "
           "The plan predicted %7 (%8 %).")
            .arg(output.toHtmlEscaped(), bytesText(s.inputBytes), bytesText(s.outputBytes))
            .arg(s.outputBytes ? static_cast<double>(s.inputBytes) / static_cast<double>(s.outputBytes) : 0, 0, 'f', 2)
            .arg(s.effectiveBpw, 0, 'f', 3)
            .arg(QString::fromStdString(formatDuration(s.seconds)), bytesText(s.predictedBytes))
            .arg(off, 0, 'f', 2),
        {chatWith, openResult, showFolder});
  });
  connect(&doc_, &ModelDocument::compressFailed, this, [this](const JobError& e) {
    status_->end(tr("Compression failed; no file was written"));
    banner_->showMessage(MessageBanner::Kind::Error, e.message);
    refreshActions();
  });
  connect(&doc_, &ModelDocument::compressCancelled, this, [this] {
    status_->end(tr("Cancelled; no file was written"));
    refreshActions();
  });
  connect(&doc_, &ModelDocument::decompressFinished, this, [this](const QString& folder) {
    status_->end(tr("Decompressed to %1").arg(folder));
    auto* openResult = new QAction(tr("Open it"), banner_);
    connect(openResult, &QAction::triggered, this, [this, folder] { openPath(folder); });
    banner_->showMessage(MessageBanner::Kind::Info, tr("Decompressed to %1 (bf16 safetensors and the model's files)")
                                                        .arg(folder.toHtmlEscaped()), {openResult});
    refreshActions();
  });
}

void MainWindow::openPath(const QString& path) {
  if (path.isEmpty()) return;
  doc_.open(path);
}

void MainWindow::chooseAndOpen(bool folder) {
  QSettings settings;
  const QString start = settings.value("lastFolder").toString();
  const QString path = folder ? QFileDialog::getExistingDirectory(this, tr("Open model folder"), start)
                              : QFileDialog::getOpenFileName(
                                    this, tr("Open model file"), start,
                                    tr("Models (*.safetensors *.eqz *.zip *.tar *.tar.gz *.tgz *.tar.xz *.tar.zst);;"
                                       "All files (*)"));
  if (path.isEmpty()) return;
  settings.setValue("lastFolder", QFileInfo(path).absolutePath());
  openPath(path);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  for (const QUrl& u : e->mimeData()->urls())
    if (u.isLocalFile()) return e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
  for (const QUrl& u : e->mimeData()->urls())
    if (u.isLocalFile()) {
      e->acceptProposedAction();
      openPath(u.toLocalFile());
      return;
    }
}

void MainWindow::closeEvent(QCloseEvent* e) {
  if (doc_.compressing() &&
      QMessageBox::question(this, tr("Quit"), tr("A compression is running. Stop it and quit? Nothing half-written "
                                                 "is left behind.")) != QMessageBox::Yes) {
    e->ignore();
    return;
  }
  doc_.cancelCompress();
  doc_.cancelAnalysis();
  doc_.cancelOpen();
  writeSettings();
  e->accept();
}

QStringList MainWindow::selectedTensors() const {
  QStringList names;
  for (const QModelIndex& i : view_->selectionModel()->selectedRows())
    names << table_->tensorAt(filter_->mapToSource(i).row());
  return names;
}

void MainWindow::selectLayer(const QString& tensor) {
  const QModelIndex i = filter_->mapFromSource(table_->index(table_->rowOf(tensor), 0));
  if (!i.isValid()) return;
  view_->selectionModel()->setCurrentIndex(i, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
  view_->scrollTo(i);
}

void MainWindow::setBitsForSelection() {
  const QStringList s = selectedTensors();
  if (s.isEmpty()) return;
  bool ok = false;
  const double bits = QInputDialog::getDouble(this, tr("Set bits"), tr("Effective bits per weight for %n layer(s):",
                                                                         nullptr, s.size()),
                                              doc_.settings().target.value, 0.5, 8.0, 2, &ok);
  if (ok) doc_.setTensorBits(s, bits);
}

void MainWindow::exportTable() {
  const QString f = QFileDialog::getSaveFileName(this, tr("Export table"),
                                                 QFileInfo(doc_.path()).completeBaseName() + "-layers.csv",
                                                 tr("CSV (*.csv);;JSON (*.json)"));
  if (f.isEmpty()) return;
  const QString error = saveFile(f, f.endsWith(".json", Qt::CaseInsensitive) ? table_->toJson() : table_->toCsv().toUtf8());
  if (!error.isEmpty()) {
    banner_->showMessage(MessageBanner::Kind::Error, error);
    return;
  }
  status_->end(tr("Table written to %1").arg(f));
}

void MainWindow::compress() {
  if (!doc_.plan() || doc_.provisional()) return;
  const QString out = QFileDialog::getSaveFileName(this, tr("Compress to"), lastOutput_.isEmpty() ? doc_.defaultOutput()
                                                                                                 : lastOutput_,
                                                   tr("EntQuant model (*.eqz)"));
  if (out.isEmpty()) return;
  compressTo(out.endsWith(".eqz") ? out : out + ".eqz");
}

void MainWindow::compressTo(const QString& output) {
  lastOutput_.clear();
  banner_->hide();
  status_->begin(tr("Compressing to %1...").arg(output));
  doc_.compress(output);
  refreshActions();
}

void MainWindow::decompress() {
  const QString folder = QFileDialog::getSaveFileName(this, tr("Decompress to a new folder"),
                                                      QFileInfo(doc_.path()).absolutePath() + "/" +
                                                          QFileInfo(doc_.path()).completeBaseName() + "-bf16");
  if (folder.isEmpty()) return;
  status_->begin(tr("Decompressing to %1...").arg(folder));
  doc_.decompress(folder);
  refreshActions();
}

void MainWindow::refreshActions() {
  const bool busy = doc_.compressing() || doc_.opening();
  const bool checkpoint = doc_.hasModel() && !doc_.isEqz();
  compress_->setEnabled(checkpoint && !busy && doc_.plan() && !doc_.provisional());
  compress_->setToolTip(doc_.provisional() ? tr("Waits for the analysis to finish (the allocation needs every layer's "
                                                "curve)")
                                           : tr("Compress the model with this plan into an .eqz file"));
  decompress_->setEnabled(doc_.isEqz() && !busy);
  savePlan_->setEnabled(checkpoint && doc_.plan() && !doc_.provisional());
  loadPlan_->setEnabled(checkpoint);
  exportTable_->setEnabled(doc_.hasModel());
  cancel_->setEnabled(busy || doc_.analyzing());
  setBits_->setEnabled(checkpoint);
  keep_->setEnabled(checkpoint);
}

QString MainWindow::totalsText() const { return totals_->text(); }

void MainWindow::refreshTotals() {
  if (!doc_.hasModel()) {
    totals_->setText(tr("Drop a model folder or file here"));
    return;
  }
  const InspectReport& r = doc_.model().report;
  if (doc_.isEqz()) {
    totals_->setText(tr("%1 on disk for %2 weights: %3 bits per weight over the whole model")
                         .arg(bytesText(r.sizeOnDisk()), QLocale().toString(static_cast<qulonglong>(r.parametersTotal)))
                         .arg(r.parametersTotal ? 8.0 * static_cast<double>(r.sizeOnDisk()) / static_cast<double>(r.parametersTotal) : 0, 0, 'f', 3));
    return;
  }
  if (!doc_.plan()) {
    totals_->setText(tr("No plan: the settings do not make one (see the rules)"));
    return;
  }
  const Plan& p = *doc_.plan();
  const double original = static_cast<double>(r.sizeOnDisk());
  QString t = tr("Predicted: %1 (%2x smaller than %3), %4 bits per weight over the whole model")
                  .arg(bytesText(p.predictedFileBytes))
                  .arg(p.predictedFileBytes ? original / static_cast<double>(p.predictedFileBytes) : 0, 0, 'f', 2)
                  .arg(bytesText(r.sizeOnDisk()))
                  .arg(p.totalWeights ? 8.0 * static_cast<double>(p.predictedFileBytes) / static_cast<double>(p.totalWeights) : 0, 0, 'f', 3);
  if (p.predictedEffectiveBits) t += tr(", %1 effective bits per compressed weight").arg(*p.predictedEffectiveBits, 0, 'f', 3);
  if (p.predictedRelMse) t += tr(", relative RMS error %1").arg(std::sqrt(*p.predictedRelMse), 0, 'f', 4);
  if (doc_.provisional()) t += tr(" (uniform until the analysis is done)");
  if (const auto& s = doc_.lastSummary()) t += tr("  |  Written: %1").arg(bytesText(s->outputBytes));
  totals_->setText(t);
}

void MainWindow::refreshDepthChart() {
  std::vector<DepthBar> bars;
  for (const TensorAnalysis& t : doc_.analysis().tensors) {
    if (!t.compressible) continue;
    DepthBar b{QString::fromStdString(t.name), t.layer, t.role, {}, {}, {}};
    if (doc_.isEqz()) {
      if (const auto m = doc_.measured().find(t.name); m != doc_.measured().end()) {
        b.bits = m->second.effectiveBits;
        if (m->second.relL2 > 0) b.relError = m->second.relL2;
      }
    } else if (const PlannedTensor* p = doc_.plan() ? doc_.plan()->find(t.name) : nullptr) {
      if (p->compress) b.bits = p->predictedBits ? p->predictedBits : (p->target ? std::optional(p->target->value) : std::nullopt);
      if (p->predictedRelMse) b.relError = std::sqrt(*p->predictedRelMse);
      if (const auto m = doc_.measured().find(t.name); m != doc_.measured().end() && m->second.encoding != Encoding::Raw)
        b.measuredBits = m->second.effectiveBits;
    }
    bars.push_back(std::move(b));
  }
  depth_->setBars(bars);
}

void MainWindow::addRecent(const QString& path) {
  QSettings settings;
  QStringList recent = settings.value("recentFiles").toStringList();
  recent.removeAll(path);
  recent.prepend(path);
  while (recent.size() > kMaxRecent) recent.removeLast();
  settings.setValue("recentFiles", recent);
  rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
  recentMenu_->clear();
  const QStringList recent = QSettings().value("recentFiles").toStringList();
  for (int i = 0; i < recent.size(); ++i) {
    QAction* a = recentMenu_->addAction(QStringLiteral("&%1 %2").arg((i + 1) % 10).arg(recent[i]));
    connect(a, &QAction::triggered, this, [this, p = recent[i]] { openPath(p); });
  }
  recentMenu_->setEnabled(!recent.isEmpty());
}

void MainWindow::readSettings() {
  QSettings s;
  restoreGeometry(s.value("window/geometry").toByteArray());
  restoreState(s.value("window/state").toByteArray());
  if (!s.contains("window/geometry")) resize(1400, 900);
  PlanSettings p = doc_.settings();
  p.target.value = s.value("options/targetBits", p.target.value).toDouble();
  p.format = s.value("options/format", "fp8").toString() == "int8" ? quant::CodeFormat::Int8 : quant::CodeFormat::Fp8E4M3;
  if (const auto m = parseMethod(s.value("options/method", "entquant").toString().toStdString())) p.method = *m;
  if (const auto o = quant::parseObjective(s.value("options/objective", "ecsq-mse").toString().toStdString())) p.objective = *o;
  if (const auto a = parseAllocation(s.value("options/allocation", "depth").toString().toStdString()))
    p.allocation = *a == Allocation::Measured ? Allocation::Depth : *a;
  p.holdTotal = s.value("options/holdTotal", false).toBool();
  doc_.setSettings(p);
  rebuildRecentMenu();
}

void MainWindow::writeSettings() const {
  QSettings s;
  s.setValue("window/geometry", saveGeometry());
  s.setValue("window/state", saveState());
  const PlanSettings& p = doc_.settings();
  s.setValue("options/targetBits", p.target.value);
  s.setValue("options/format", QString::fromStdString(std::string(quant::codeFormatName(p.format))));
  s.setValue("options/method", QString::fromStdString(std::string(methodName(p.method))));
  s.setValue("options/objective", QString::fromStdString(std::string(quant::objectiveName(p.objective))));
  s.setValue("options/allocation", QString::fromStdString(std::string(allocationName(p.allocation))));
  s.setValue("options/holdTotal", p.holdTotal);
}

void MainWindow::setComparison(const QString& original, const QString& compressed) {
  chat_->setCandidates(original, compressed);
  ab_->setModels(original, compressed);
  quality_->setModels(original, compressed);
}

bool MainWindow::saveScreenshot(const QString& path) { return grab().save(path); }

void MainWindow::about() {
#ifdef ENTQUANT_HAVE_CUDA
  const QString cuda = tr("built with the CUDA toolkit (the GPU backend arrives with its own release)");
#else
  const QString cuda = tr("not built");
#endif
  QMessageBox::about(
      this, tr("About EntQuant Studio"),
      tr("<h3>EntQuant Studio %1</h3><p>Compress large language models with entropy-coded Float8 quantization and "
         "check the result.</p><table><tr><td>Qt</td><td>%2 (built with %3)</td></tr><tr><td>Compiler</td><td>%4</td>"
         "</tr><tr><td>CPU kernels</td><td>%5</td></tr><tr><td>CUDA</td><td>%6</td></tr></table>")
          .arg(ENTQUANT_VERSION, qVersion(), QT_VERSION_STR, QStringLiteral(__VERSION__),
               QString::fromStdString(std::string(kernelIsaName(kernelIsa()))), cuda));
}

}  // namespace eq::ui
