#include "widgets/job_status.h"

#include "common/units.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>

namespace eq::ui {

JobStatus::JobStatus(QWidget* parent) : QWidget(parent) {
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  label_ = new QLabel;
  bar_ = new QProgressBar;
  bar_->setRange(0, 100);
  bar_->setMaximumWidth(220);
  cancel_ = new QPushButton(tr("Cancel"));
  cancel_->setToolTip(tr("Stop this job; nothing half-written is left behind (Esc)"));
  layout->addWidget(label_, 1);
  layout->addWidget(bar_);
  layout->addWidget(cancel_);
  bar_->hide();
  cancel_->hide();
  connect(cancel_, &QPushButton::clicked, this, &JobStatus::cancelRequested);
}

QString JobStatus::describe(const Progress& p) {
  static const QMap<Phase, QString> verbs{{Phase::Extract, tr("Unpacking")},     {Phase::Load, tr("Loading")},
                                          {Phase::Calibrate, tr("Calibrating")}, {Phase::Analyze, tr("Analyzing")},
                                          {Phase::Compress, tr("Compressing")},  {Phase::Verify, tr("Verifying")},
                                          {Phase::Decompress, tr("Decompressing")}, {Phase::Evaluate, tr("Evaluating")}};
  QString s = verbs.value(p.phase);
  const bool items = p.unit == Unit::Tensors || p.unit == Unit::Blocks;
  const std::uint64_t current = p.itemDone || !items ? p.done : std::min(p.done + 1, p.total);
  if (!p.item.empty()) s += " " + QString::fromStdString(p.item);
  if (p.total > 0 && p.unit != Unit::Bytes)
    s += QStringLiteral(" (%1/%2%3)").arg(current).arg(p.total).arg(items ? QString() : " " + QString::fromStdString(std::string(unitName(p.unit))));
  if (p.bytesTotal > 0 && p.bytesPerSecond() > 0)
    s += QStringLiteral(", %1/s").arg(QString::fromStdString(formatBytes(static_cast<std::uint64_t>(p.bytesPerSecond()))));
  if (p.pass.block >= 0)
    s += tr(", calibration: block %1 pass %2, %3/%4 texts").arg(p.pass.block).arg(p.pass.pass).arg(p.pass.textsDone).arg(p.pass.texts);
  if (p.etaSeconds > 0) s += tr(", ETA %1").arg(QString::fromStdString(formatDuration(p.etaSeconds)));
  return s;
}

void JobStatus::begin(const QString& what) {
  label_->setText(what);
  bar_->setRange(0, 0);  // busy
  bar_->show();
  cancel_->show();
}

void JobStatus::show(const Progress& p) {
  label_->setText(describe(p));
  bar_->setRange(0, 100);
  bar_->setValue(static_cast<int>(100 * p.fraction()));
  bar_->show();
  cancel_->show();
}

void JobStatus::end(const QString& message) {
  bar_->hide();
  cancel_->hide();
  label_->setText(message);
}

QString JobStatus::text() const { return label_->text(); }
int JobStatus::percent() const { return bar_->isVisible() ? bar_->value() : -1; }

}  // namespace eq::ui
