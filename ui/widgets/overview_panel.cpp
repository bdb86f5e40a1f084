#include "widgets/overview_panel.h"

#include "common/units.h"

#include <QFileInfo>
#include <QLabel>
#include <QLocale>
#include <QTextDocument>
#include <QVBoxLayout>

namespace eq::ui {
namespace {
QString bytes(std::uint64_t b) { return QString::fromStdString(formatBytes(b)).toHtmlEscaped(); }
QString count(std::uint64_t n) { return QLocale().toString(static_cast<qulonglong>(n)); }
}  // namespace

OverviewPanel::OverviewPanel(ModelDocument& document, QWidget* parent) : QWidget(parent), doc_(document) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  label_ = new QLabel;
  label_->setWordWrap(true);
  label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  label_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  layout->addWidget(label_);
  connect(&doc_, &ModelDocument::modelOpened, this, &OverviewPanel::refresh);
  refresh();
}

QString OverviewPanel::text() const {
  QTextDocument d;
  d.setHtml(label_->text());
  return d.toPlainText();
}

void OverviewPanel::refresh() {
  if (!doc_.hasModel()) {
    label_->setText(tr("<p><b>No model open.</b></p><p>Drop a HuggingFace model folder, a .safetensors file, an "
                       "archive of a model folder or an .eqz file anywhere on this window, or use File &gt; Open.</p>"));
    return;
  }
  const OpenedModel& m = doc_.model();
  const InspectReport& r = m.report;
  QString html = QStringLiteral("<p><b>%1</b><br><span style='color:gray'>%2 (%3)</span></p><table>")
                     .arg(QFileInfo(doc_.path()).fileName().toHtmlEscaped(), doc_.path().toHtmlEscaped(),
                          QString::fromStdString(std::string(sourceKindName(r.kind))));
  auto row = [&](const QString& k, const QString& v) {
    html += QStringLiteral("<tr><td style='padding-right:8px'>%1</td><td>%2</td></tr>").arg(k, v);
  };
  if (r.config) {
    const ModelConfig& c = *r.config;
    row(tr("Architecture"), QStringLiteral("%1 (%2)").arg(QString::fromStdString(c.architecture()).toHtmlEscaped(),
                                                        QString::fromStdString(c.modelType).toHtmlEscaped()));
    row(tr("Shape"), tr("%1 layers, hidden %2, MLP %3, %4 / %5 KV heads, vocab %6")
                         .arg(c.numLayers).arg(c.hiddenSize).arg(c.intermediateSize).arg(c.numHeads)
                         .arg(c.numKvHeads).arg(c.vocabSize));
  } else {
    row(tr("Architecture"), tr("unknown (no config.json): can be compressed, not run"));
  }
  const double pct = r.parametersTotal ? 100.0 * static_cast<double>(r.parametersCompressible) /
                                             static_cast<double>(r.parametersTotal) : 0;
  row(tr("Parameters"), tr("%1 total, %2 compressible (%3 %), %4 kept")
                            .arg(count(r.parametersTotal), count(r.parametersCompressible))
                            .arg(pct, 0, 'f', 1)
                            .arg(count(r.parametersTotal - r.parametersCompressible)));
  row(tr("On disk"), bytes(r.sizeOnDisk()));
  row(tr("Memory to run"), tr("%1 in bf16, %2 as FP8 codes; KV cache %3 per token")
                               .arg(bytes(r.memoryBf16Bytes), bytes(r.memoryFp8Bytes), bytes(r.kvCacheBytesPerToken)));
  row(tr("Tokenizer"), m.hasTokenizer ? tr("yes") : tr("no"));
  row(tr("Chat template"), !m.hasChatTemplate ? tr("no")
                           : m.chatTemplateError.isEmpty() ? tr("yes")
                                                           : tr("yes, but it fails: %1").arg(m.chatTemplateError.toHtmlEscaped()));
  if (!r.compression.is_null()) {
    const auto& settings = r.compression["settings"];
    const auto& sum = r.compression["summary"];
    auto text = [](const nlohmann::json& j, const char* k) {
      return j.contains(k) && j[k].is_string() ? QString::fromStdString(j[k].get<std::string>()) : QString("?");
    };
    const double bpw = sum.contains("effective_bpw") && sum["effective_bpw"].is_number() ? sum["effective_bpw"].get<double>() : 0;
    row(tr("Compressed"), tr("%1, %2 codes, %3 effective bits per weight")
                              .arg(text(settings, "method"), text(settings, "code_format"))
                              .arg(bpw, 0, 'f', 3).toHtmlEscaped());
  }
  html += "</table>";
  for (const auto& w : r.warnings) html += "<p style='color:#a05000'>" + QString::fromStdString(w).toHtmlEscaped() + "</p>";
  label_->setText(html);
}

}  // namespace eq::ui
