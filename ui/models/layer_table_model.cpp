#include "models/layer_table_model.h"

#include "common/units.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLocale>

#include <cmath>

namespace eq::ui {
namespace {

QString bitsText(std::optional<double> b) { return b ? QString::number(*b, 'f', 3) : QString(); }

const char* kHeaders[LayerTableModel::ColumnCount] = {
    "Tensor", "Block", "Role", "Shape", "Parameters", "Target", "Bits (pred.)", "Bits (meas.)", "Entropy",
    "Codes", "Rel. error (pred.)", "Rel. error (meas.)", "Bytes (pred.)", "Bytes (meas.)", "Status"};

const char* kTips[LayerTableModel::ColumnCount] = {
    "The checkpoint tensor",
    "The transformer block it belongs to",
    "What the weight computes",
    "Rows x columns as quantized (one scale per row)",
    "Weights in the tensor",
    "Target effective bits per weight: the plan's allocation, or your own (type a number, or keep)",
    "Effective bits per weight the plan predicts: everything stored for the tensor (codes, tables, scales, padding)",
    "Effective bits per weight the last compression wrote",
    "Shannon entropy of the codes in bits per weight (the rANS coder stores them within 0.5 % of it)",
    "Distinct 8-bit codes used",
    "Relative RMS error of the weights the plan predicts, read off the tensor's rate-distortion curve",
    "Relative RMS error of the weights the last compression measured: sqrt(sum (w_hat - w)^2 / sum w^2)",
    "Bytes the plan predicts for the tensor",
    "Bytes the last compression stored",
    "Where the tensor stands"};

}  // namespace

LayerTableModel::LayerTableModel(ModelDocument& document, QObject* parent)
    : QAbstractTableModel(parent), doc_(document) {
  connect(&doc_, &ModelDocument::modelOpened, this, &LayerTableModel::rebuild);
  connect(&doc_, &ModelDocument::tensorsAnalyzed, this, [this](const QStringList& names) {
    int lo = rowCount(), hi = -1;
    for (const QString& n : names)
      if (const int r = rowOf(n); r >= 0) lo = std::min(lo, r), hi = std::max(hi, r);
    if (hi >= 0) emit dataChanged(index(lo, 0), index(hi, ColumnCount - 1));
  });
  connect(&doc_, &ModelDocument::analysisFinished, this, [this] { refresh(0, ColumnCount - 1); });
  connect(&doc_, &ModelDocument::planChanged, this, [this] { refresh(Target, Status); });
  connect(&doc_, &ModelDocument::compressFinished, this, [this] { refresh(Target, Status); });
  connect(&doc_, &ModelDocument::compressProgress, this, [this](const Progress&) { refresh(Status, Status); });
}

void LayerTableModel::rebuild() {
  beginResetModel();
  rows_.clear();
  const auto& tensors = doc_.analysis().tensors;
  for (std::size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].compressible) rows_.push_back(i);
  endResetModel();
}

void LayerTableModel::refresh(int firstColumn, int lastColumn) {
  if (!rows_.empty()) emit dataChanged(index(0, firstColumn), index(rowCount() - 1, lastColumn));
}

int LayerTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}
int LayerTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QString LayerTableModel::tensorAt(int row) const {
  if (row < 0 || row >= rowCount()) return {};
  return QString::fromStdString(doc_.analysis().tensors[rows_[static_cast<std::size_t>(row)]].name);
}

int LayerTableModel::rowOf(const QString& tensor) const {
  const std::string n = tensor.toStdString();
  for (std::size_t r = 0; r < rows_.size(); ++r)
    if (doc_.analysis().tensors[rows_[r]].name == n) return static_cast<int>(r);
  return -1;
}

QVariant LayerTableModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const TensorAnalysis& t = doc_.analysis().tensors[rows_[static_cast<std::size_t>(index.row())]];
  const PlannedTensor* p = doc_.plan() ? doc_.plan()->find(t.name) : nullptr;
  const auto m = doc_.measured().find(t.name);
  const TensorReport* meas = m != doc_.measured().end() ? &m->second : nullptr;
  const bool measuredCompressed = meas && meas->encoding != Encoding::Raw;
  const QLocale locale;
  // sortable value and display text of each column
  QVariant value;
  QString text;
  switch (index.column()) {
    case Name: value = text = QString::fromStdString(t.name); break;
    case Block:
      value = t.layer;
      text = t.layer >= 0 ? QString::number(t.layer) : QString();
      break;
    case Role: value = text = QString::fromStdString(std::string(roleName(t.role))); break;
    case Shape:
      value = static_cast<qlonglong>(t.numel);
      text = QStringLiteral("%1 x %2").arg(t.rows).arg(t.cols);
      break;
    case Parameters:
      value = static_cast<qulonglong>(t.numel);
      text = locale.toString(static_cast<qulonglong>(t.numel));
      break;
    case Target:
      if (doc_.isEqz()) break;
      if (p && !p->compress) value = text = QStringLiteral("keep");
      else if (p && p->target && p->target->mode == quant::RateTarget::Mode::Bits)
        value = p->target->value, text = QString::number(p->target->value, 'f', 2) + (p->ruled ? " *" : "");
      else if (p && p->target) value = p->target->value, text = QStringLiteral("lambda %1").arg(p->target->value);
      break;
    case PredictedBits:
      if (p && p->compress && p->predictedBits) value = *p->predictedBits, text = bitsText(p->predictedBits);
      break;
    case MeasuredBits:
      if (measuredCompressed) value = meas->effectiveBits, text = bitsText(meas->effectiveBits);
      break;
    case Entropy:
      if (measuredCompressed && meas->entropyBits > 0) value = meas->entropyBits, text = bitsText(meas->entropyBits);
      break;
    case Codes:
      if (measuredCompressed && meas->distinctSymbols > 0) value = meas->distinctSymbols, text = QString::number(meas->distinctSymbols);
      break;
    case PredictedError:
      if (p && p->predictedRelMse) {
        value = std::sqrt(*p->predictedRelMse);
        text = QString::number(value.toDouble(), 'f', 4);
      }
      break;
    case MeasuredError:
      if (measuredCompressed) value = meas->relL2, text = QString::number(meas->relL2, 'f', 4);
      break;
    case PredictedBytes:
      if (p) value = static_cast<qulonglong>(p->predictedBytes), text = QString::fromStdString(formatBytes(p->predictedBytes));
      break;
    case MeasuredBytes:
      if (meas) value = static_cast<qulonglong>(meas->storedBytes), text = QString::fromStdString(formatBytes(meas->storedBytes));
      break;
    case Status:
      if (doc_.isEqz()) text = measuredCompressed ? "compressed" : "kept";
      else if (doc_.compressing()) text = "compressing";
      else if (p && !p->compress) text = "kept";
      else if (!t.analyzed()) text = doc_.analyzing() ? "analyzing" : "not analyzed";
      else if (meas) text = "compressed";
      else text = "planned";
      value = text;
      break;
    default: break;
  }
  switch (role) {
    case Qt::DisplayRole: return text;
    case Qt::EditRole: return index.column() == Target ? QVariant(text.remove(" *")) : value;
    case SortRole: return value;
    case Qt::TextAlignmentRole:
      return index.column() >= Block && index.column() != Role && index.column() != Status
                 ? QVariant(Qt::AlignRight | Qt::AlignVCenter) : QVariant();
    case Qt::ToolTipRole:
      if (index.column() == Target && p && p->ruled) return QStringLiteral("Set by a rule (see Rules)");
      if (index.column() == Name && t.stats)
        return QStringLiteral("%1\n|w| up to %2, rms %3, kurtosis %4")
            .arg(QString::fromStdString(t.name)).arg(t.stats->absMax, 0, 'g', 3).arg(t.stats->rms, 0, 'g', 3)
            .arg(t.stats->kurtosis, 0, 'f', 1);
      return text;
    default: return {};
  }
}

QVariant LayerTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || section < 0 || section >= ColumnCount) return {};
  if (role == Qt::DisplayRole) return QString(kHeaders[section]);
  if (role == Qt::ToolTipRole) return QString(kTips[section]);
  return {};
}

Qt::ItemFlags LayerTableModel::flags(const QModelIndex& index) const {
  Qt::ItemFlags f = QAbstractTableModel::flags(index);
  if (index.column() == Target && !doc_.isEqz() && doc_.settings().method == Method::EntQuant &&
      !doc_.settings().givenScales)
    f |= Qt::ItemIsEditable;
  return f;
}

bool LayerTableModel::setData(const QModelIndex& index, const QVariant& value, int role) {
  if (role != Qt::EditRole || index.column() != Target) return false;
  const QString text = value.toString().trimmed();
  std::optional<double> bits;
  if (text.compare("keep", Qt::CaseInsensitive) != 0) {
    bool ok = false;
    const double b = text.toDouble(&ok);
    if (!ok || !(b > 0 && b <= 8)) return false;
    bits = b;
  }
  doc_.setTensorBits({tensorAt(index.row())}, bits);
  return true;
}

QString LayerTableModel::toCsv() const {
  auto quote = [](QString s) { return s.contains(',') || s.contains('"') ? '"' + s.replace('"', "\"\"") + '"' : s; };
  QStringList lines;
  QStringList header;
  for (int c = 0; c < ColumnCount; ++c) header << quote(kHeaders[c]);
  lines << header.join(',');
  for (int r = 0; r < rowCount(); ++r) {
    QStringList cells;
    for (int c = 0; c < ColumnCount; ++c) cells << quote(data(index(r, c), Qt::DisplayRole).toString());
    lines << cells.join(',');
  }
  return lines.join('\n') + '\n';
}

QByteArray LayerTableModel::toJson() const {
  static const char* keys[ColumnCount] = {"name", "block", "role", "numel_shape", "parameters", "target_bpw",
                                          "predicted_bpw", "measured_bpw", "entropy_bpw", "distinct_codes",
                                          "predicted_rel_error", "measured_rel_error", "predicted_bytes",
                                          "measured_bytes", "status"};
  QJsonArray rows;
  for (int r = 0; r < rowCount(); ++r) {
    QJsonObject o;
    for (int c = 0; c < ColumnCount; ++c) {
      const QVariant v = data(index(r, c), SortRole);
      if (v.isValid()) o[keys[c]] = QJsonValue::fromVariant(v);
    }
    o["shape"] = data(index(r, Shape), Qt::DisplayRole).toString();
    rows.append(o);
  }
  return QJsonDocument(rows).toJson();
}

}  // namespace eq::ui
