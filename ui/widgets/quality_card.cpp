#include "widgets/quality_card.h"
#include "save_file.h"

#include "common/error.h"
#include "pipeline/demo_model.h"
#include "plots/window_plot.h"
#include "widgets/job_status.h"

#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTextDocument>
#include <QToolButton>
#include <QVBoxLayout>

#include <filesystem>

namespace eq::ui {

QualityCard::QualityCard(ModelDocument& document, QWidget* parent) : QWidget(parent), doc_(document) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  models_ = new QLabel(tr("Compress a model (or open both) to compare the result with the original."));
  models_->setWordWrap(true);
  layout->addWidget(models_);
  auto* row = new QHBoxLayout;
  text_ = new QLineEdit;
  text_->setPlaceholderText(tr("A UTF-8 text file the models have not been tuned on"));
  auto* browse = new QToolButton;
  browse->setText("...");
  ctx_ = new QSpinBox;
  ctx_->setRange(16, 131072);
  ctx_->setValue(512);
  ctx_->setSuffix(tr(" tokens"));
  ctx_->setToolTip(tr("Window length: the text is cut into windows of this many tokens, each run from an empty cache"));
  windows_ = new QSpinBox;
  windows_->setRange(0, 100000);
  windows_->setSpecialValueText(tr("all"));
  windows_->setToolTip(tr("At most this many windows (all: the whole text)"));
  run_ = new QPushButton(tr("Run quality check"));
  cancel_ = new QPushButton(tr("Cancel"));
  export_ = new QPushButton(tr("Export report..."));
  export_->setToolTip(tr("The result with the plan and the analysis, as JSON"));
  row->addWidget(new QLabel(tr("Text")));
  row->addWidget(text_, 1);
  row->addWidget(browse);
  row->addWidget(new QLabel(tr("Window")));
  row->addWidget(ctx_);
  row->addWidget(new QLabel(tr("Windows")));
  row->addWidget(windows_);
  row->addWidget(run_);
  row->addWidget(cancel_);
  row->addWidget(export_);
  layout->addLayout(row);
  status_ = new JobStatus;
  layout->addWidget(status_);
  card_ = new QLabel;
  card_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  card_->setStyleSheet("QLabel { background: white; border: 1px solid #d0d0d0; border-radius: 6px; padding: 8px; }");
  card_->hide();
  layout->addWidget(card_);
  plot_ = new WindowPlot;
  layout->addWidget(plot_, 1);

  connect(browse, &QToolButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Text to compare on"), QString(), tr("Text (*.txt);;All files (*)"));
    if (!f.isEmpty()) text_->setText(f);
  });
  connect(run_, &QPushButton::clicked, this, &QualityCard::run);
  connect(cancel_, &QPushButton::clicked, &job_, &BackgroundJob::cancel);
  connect(status_, &JobStatus::cancelRequested, &job_, &BackgroundJob::cancel);
  connect(export_, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, tr("Export report"), "quality-report.json", tr("JSON (*.json)"));
    if (f.isEmpty()) return;
    const QString error = saveFile(f, reportJson());
    status_->end(error.isEmpty() ? tr("Report written to %1").arg(f) : error);
  });
  connect(&job_, &BackgroundJob::progressed, status_, &JobStatus::show);
  connect(&job_, &BackgroundJob::failed, this, [this](const JobError& e) {
    status_->end(e.message);
    run_->setEnabled(true);
    cancel_->setEnabled(false);
  });
  connect(&job_, &BackgroundJob::cancelled, this, [this] {
    status_->end(tr("Quality check cancelled"));
    run_->setEnabled(true);
    cancel_->setEnabled(false);
  });
  connect(&job_, &BackgroundJob::succeeded, this, [this] {
    result_ = job_.result();
    const CompareResult& r = *result_;
    const double change = 100.0 * (r.compressed.ppl / r.original.ppl - 1.0);
    card_->setText(tr("<table cellspacing=6>"
                      "<tr><td>Perplexity</td><td><b>%1 -> %2</b> (%3 %)</td></tr>"
                      "<tr><td>Mean KL divergence</td><td><b>%4</b> nats per token</td></tr>"
                      "<tr><td>Top-1 agreement</td><td><b>%5 %</b></td></tr>"
                      "<tr><td>Measured on</td><td>%6 windows of %7 tokens (%8 positions) in %9 s</td></tr></table>")
                       .arg(r.original.ppl, 0, 'f', 4).arg(r.compressed.ppl, 0, 'f', 4)
                       .arg(change, 0, 'f', 2)
                       .arg(r.meanKl, 0, 'f', 5)
                       .arg(100 * r.top1Agreement, 0, 'f', 2)
                       .arg(r.original.windows).arg(ctxUsed_).arg(r.original.scored)
                       .arg(r.seconds, 0, 'f', 1));
    card_->show();
    plot_->setWindows(r.windows);
    status_->end(tr("Quality check done"));
    run_->setEnabled(true);
    cancel_->setEnabled(false);
    export_->setEnabled(true);
    emit finished();
  });
  cancel_->setEnabled(false);
  export_->setEnabled(false);
  run_->setEnabled(false);
}

void QualityCard::setModels(const QString& original, const QString& compressed) {
  original_ = original;
  compressed_ = compressed;
  models_->setText(tr("Compares <b>%1</b> (original) with <b>%2</b> (compressed) on the same windows of the text.")
                       .arg(QFileInfo(original).fileName().toHtmlEscaped(), QFileInfo(compressed).fileName().toHtmlEscaped()));
  std::error_code ec;
  try {
    if (text_->text().isEmpty() && std::filesystem::equivalent(original.toStdString(), demoModelPath(), ec))
      text_->setText(QString::fromStdString(demoTextPath().string()));
  } catch (const Error&) {
    // no bundled demo model here
  }
  run_->setEnabled(!original.isEmpty() && !compressed.isEmpty());
}

void QualityCard::setTextFile(const QString& path) { text_->setText(path); }

void QualityCard::setWindows(std::int64_t ctx, std::int64_t maxWindows) {
  ctx_->setValue(static_cast<int>(ctx));
  windows_->setValue(static_cast<int>(maxWindows));
}

void QualityCard::run() {
  if (original_.isEmpty() || compressed_.isEmpty() || text_->text().isEmpty()) {
    status_->end(tr("Choose a text file first"));
    return;
  }
  QualityRequest r{original_, compressed_, text_->text(), ctx_->value(), windows_->value(), doc_.codeSettings().threads};
  ctxUsed_ = r.ctx;
  status_->begin(tr("Loading both models..."));
  run_->setEnabled(false);
  cancel_->setEnabled(true);
  job_.run(r);
}

QString QualityCard::cardText() const {
  QTextDocument d;
  d.setHtml(card_->text());
  return d.toPlainText();
}

QByteArray QualityCard::reportJson() const {
  nlohmann::ordered_json j;
  if (result_) {
    const CompareResult& r = *result_;
    nlohmann::ordered_json windows = nlohmann::ordered_json::array();
    for (const auto& w : r.windows)
      windows.push_back({{"mean_kl", w.meanKl}, {"ppl_original", w.pplOriginal}, {"ppl_compressed", w.pplCompressed},
                         {"top1_agreement", w.top1Agreement}});
    j["quality"] = {{"original", original_.toStdString()}, {"compressed", compressed_.toStdString()},
                    {"text", text_->text().toStdString()}, {"ctx", ctxUsed_},
                    {"ppl_original", r.original.ppl}, {"ppl_compressed", r.compressed.ppl},
                    {"ppl_change_percent", 100.0 * (r.compressed.ppl / r.original.ppl - 1.0)},
                    {"mean_kl", r.meanKl}, {"top1_agreement", r.top1Agreement}, {"windows", r.original.windows},
                    {"scored", r.original.scored}, {"by_window", windows}};
  }
  if (doc_.plan() && !doc_.provisional()) j["plan"] = doc_.plan()->toJson();
  if (doc_.analysisComplete()) j["analysis"] = doc_.analysis().toJson();
  return QByteArray::fromStdString(j.dump(1));
}

}  // namespace eq::ui
