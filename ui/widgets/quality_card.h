// The quality check after compressing: runs the comparison of the original and the compressed model on a text the
// user picks (the demo model's held-out text by default for the demo model) with progress and cancel, and shows a
// result card (perplexity of both and its change, mean KL divergence, top-1 agreement) and the KL window by window.
// The result exports as JSON together with the plan and the analysis.
#pragma once

#include "jobs/quality_job.h"
#include "model_document.h"

#include <QWidget>

class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace eq::ui {

class JobStatus;
class WindowPlot;

class QualityCard : public QWidget {
  Q_OBJECT

 public:
  explicit QualityCard(ModelDocument& document, QWidget* parent = nullptr);
  void setModels(const QString& original, const QString& compressed);
  void setTextFile(const QString& path);
  void setWindows(std::int64_t ctx, std::int64_t maxWindows);
  void run();
  void cancel() { job_.cancel(); }
  const std::optional<CompareResult>& result() const { return result_; }
  QString cardText() const;
  // {"quality": ..., "plan": ..., "analysis": ...} (plan and analysis where the document has them).
  QByteArray reportJson() const;
  QualityJob& job() { return job_; }

 signals:
  void finished();

 private:
  ModelDocument& doc_;
  QualityJob job_;
  QString original_, compressed_;
  std::optional<CompareResult> result_;
  std::int64_t ctxUsed_ = 0;
  QLineEdit* text_;
  QSpinBox *ctx_, *windows_;
  QPushButton *run_, *cancel_, *export_;
  QLabel *models_, *card_;
  JobStatus* status_;
  WindowPlot* plot_;
};

}  // namespace eq::ui
