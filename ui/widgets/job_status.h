// The status bar's view of the job that runs: what it does ("Compressing model.layers.17.mlp.down_proj (118/224),
// 410 MB/s, ETA 1 min 12 s"), a progress bar and a Cancel button. Fed with the core's Progress, throttled by the
// workers to ten updates a second.
#pragma once

#include "common/progress.h"

#include <QWidget>

class QLabel;
class QProgressBar;
class QPushButton;

namespace eq::ui {

class JobStatus : public QWidget {
  Q_OBJECT

 public:
  explicit JobStatus(QWidget* parent = nullptr);
  void begin(const QString& what);  // shows the bar, busy until the first progress
  void show(const Progress& p);
  void end(const QString& message = {});  // hides the bar; the message stays in the label
  QString text() const;
  int percent() const;  // the bar's value (0-100), -1 when hidden
  // One line for a progress: "Compressing <item> (k/n), <rate>, ETA <t>".
  static QString describe(const Progress& p);

 signals:
  void cancelRequested();

 private:
  QLabel* label_;
  QProgressBar* bar_;
  QPushButton* cancel_;
};

}  // namespace eq::ui
