#include "models/rule_list_model.h"

#include "common/error.h"

namespace eq::ui {
namespace {
QString ruleText(const LayerRule& r) {
  return QString::fromStdString(r.pattern) + "=" + (r.bits ? QString::number(*r.bits) : QStringLiteral("keep"));
}
}  // namespace

RuleListModel::RuleListModel(ModelDocument& document, QObject* parent) : QAbstractListModel(parent), doc_(document) {
  connect(&doc_, &ModelDocument::planChanged, this, &RuleListModel::sync);
  connect(&doc_, &ModelDocument::modelOpened, this, &RuleListModel::sync);
}

void RuleListModel::sync() {
  const auto& rules = doc_.settings().rules;
  bool same = rules.size() == rules_.size();
  for (std::size_t i = 0; same && i < rules.size(); ++i)
    same = rules[i].pattern == rules_[i].pattern && rules[i].bits == rules_[i].bits;
  if (same) return;
  beginResetModel();
  rules_ = rules;
  endResetModel();
}

int RuleListModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rules_.size());
}

QVariant RuleListModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const LayerRule& r = rules_[static_cast<std::size_t>(index.row())];
  if (role == Qt::DisplayRole || role == Qt::EditRole) return ruleText(r);
  if (role == Qt::ToolTipRole)
    return QStringLiteral("Tensors whose name matches %1 %2 (later rules win)")
        .arg(QString::fromStdString(r.pattern), r.bits ? QStringLiteral("get %1 bits").arg(*r.bits) : "are kept as they are");
  return {};
}

Qt::ItemFlags RuleListModel::flags(const QModelIndex& index) const {
  return QAbstractListModel::flags(index) | Qt::ItemIsEditable;
}

bool RuleListModel::setData(const QModelIndex& index, const QVariant& value, int role) {
  if (role != Qt::EditRole || !index.isValid()) return false;
  QString error;
  if (setRule(index.row(), value.toString(), &error)) return true;
  emit ruleRejected(error);
  return false;
}

bool RuleListModel::setRule(int row, const QString& text, QString* error) {
  try {
    const LayerRule rule = LayerRule::parse(text.trimmed().toStdString());
    PlanSettings s = doc_.settings();
    if (row >= 0 && row < static_cast<int>(s.rules.size())) s.rules[static_cast<std::size_t>(row)] = rule;
    else s.rules.push_back(rule);
    doc_.setSettings(s);
    return true;
  } catch (const Error& e) {
    if (error) *error = QString::fromStdString(e.what());
    return false;
  }
}

void RuleListModel::removeRules(QList<int> rows) {
  std::sort(rows.begin(), rows.end(), std::greater<>());
  PlanSettings s = doc_.settings();
  for (const int r : rows)
    if (r >= 0 && r < static_cast<int>(s.rules.size())) s.rules.erase(s.rules.begin() + r);
  doc_.setSettings(s);
}

void RuleListModel::moveRule(int row, int delta) {
  PlanSettings s = doc_.settings();
  const int to = row + delta;
  if (row < 0 || to < 0 || row >= static_cast<int>(s.rules.size()) || to >= static_cast<int>(s.rules.size())) return;
  std::swap(s.rules[static_cast<std::size_t>(row)], s.rules[static_cast<std::size_t>(to)]);
  doc_.setSettings(s);
}

}  // namespace eq::ui
