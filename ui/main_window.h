// EntQuant Studio's main window: drop a model anywhere (or File > Open, recent files, the command line), see its
// overview and every compressible layer in a table that fills as the analysis runs, set the target and the rules
// (or drag bars on the depth chart, or the operating point on a layer's curve) and see the predicted size and
// error of every layer update at once, then compress with progress, ETA and cancel. A tab beside the plots is
// where the chat pane goes (next release). The window never waits on a worker.
#pragma once

#include "model_document.h"

#include <QMainWindow>

class QAction;
class QLabel;
class QLineEdit;
class QCheckBox;
class QMenu;
class QTableView;
class QTabWidget;

namespace eq::ui {

class AbPane;
class ChatPane;
class QualityCard;
class ControlsPanel;
class DepthChart;
class JobStatus;
class LayerFilterModel;
class LayerPlots;
class LayerTableModel;
class MessageBanner;
class OverviewPanel;
class RulesEditor;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  void openPath(const QString& path);
  // Renders the window to a PNG (the --screenshot mode); false when it cannot be written.
  bool saveScreenshot(const QString& path);
  void selectLayer(const QString& tensor);

  // For tests and the screenshot tool: the parts a user sees.
  ModelDocument& document() { return doc_; }
  LayerTableModel& table() { return *table_; }
  LayerFilterModel& filter() { return *filter_; }
  QTableView& tableView() { return *view_; }
  DepthChart& depthChart() { return *depth_; }
  LayerPlots& layerPlots() { return *plots_; }
  ControlsPanel& controls() { return *controls_; }
  RulesEditor& rules() { return *rules_; }
  OverviewPanel& overview() { return *overview_; }
  MessageBanner& banner() { return *banner_; }
  JobStatus& jobStatus() { return *status_; }
  QString totalsText() const;
  QTabWidget& tabs() { return *tabs_; }
  ChatPane& chat() { return *chat_; }
  AbPane& ab() { return *ab_; }
  QualityCard& quality() { return *quality_; }
  // The original and the compressed model, for the chat pane's choices, A/B and the quality check.
  void setComparison(const QString& original, const QString& compressed);
  // Compress without asking for the file (tests, and the path the dialog returned).
  void compressTo(const QString& output);

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;
  void closeEvent(QCloseEvent* e) override;

 private:
  void buildActions();
  void buildUi();
  void connectDocument();
  void refreshTotals();
  void refreshDepthChart();
  void refreshActions();
  void addRecent(const QString& path);
  void rebuildRecentMenu();
  void readSettings();
  void writeSettings() const;
  void chooseAndOpen(bool folder);
  void compress();
  void decompress();
  void exportTable();
  void setBitsForSelection();
  QStringList selectedTensors() const;
  void about();

  ModelDocument doc_;
  LayerTableModel* table_;
  LayerFilterModel* filter_;
  QTableView* view_;
  QLineEdit* filterEdit_;
  QCheckBox* filterRegex_;
  QLabel* totals_;
  QTabWidget* tabs_;
  LayerPlots* plots_;
  DepthChart* depth_;
  ChatPane* chat_;
  AbPane* ab_;
  QualityCard* quality_;
  ControlsPanel* controls_;
  RulesEditor* rules_;
  OverviewPanel* overview_;
  MessageBanner* banner_;
  JobStatus* status_;
  QMenu* recentMenu_;
  QAction *openFolder_, *openFile_, *savePlan_, *loadPlan_, *exportTable_, *compress_, *decompress_, *cancel_,
      *setBits_, *keep_, *quit_, *about_;
  QString lastOutput_;
  bool syncingSelection_ = false;
};

}  // namespace eq::ui
