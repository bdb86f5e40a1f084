#include "models/layer_filter_model.h"

#include "models/layer_table_model.h"

#include <QCollator>

namespace eq::ui {

LayerFilterModel::LayerFilterModel(QObject* parent) : QSortFilterProxyModel(parent) {
  setSortRole(LayerTableModel::SortRole);
}

void LayerFilterModel::setFilter(const QString& text, bool regex) {
  text_ = text;
  regex_ = regex;
  re_ = QRegularExpression(text);
  valid_ = !regex || re_.isValid();
  invalidateRowsFilter();
}

bool LayerFilterModel::filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const {
  if (text_.isEmpty()) return true;
  const QString name = sourceModel()->index(sourceRow, LayerTableModel::Name, sourceParent).data().toString();
  if (!regex_) return name.contains(text_, Qt::CaseInsensitive);
  return valid_ && re_.match(name).hasMatch();
}

bool LayerFilterModel::lessThan(const QModelIndex& left, const QModelIndex& right) const {
  const QVariant a = left.data(LayerTableModel::SortRole), b = right.data(LayerTableModel::SortRole);
  if (!a.isValid() || !b.isValid()) return !a.isValid() && b.isValid();
  if (a.typeId() == QMetaType::QString) {
    static const QCollator natural = [] {  // "layers.2" before "layers.10"
      QCollator c;
      c.setNumericMode(true);
      return c;
    }();
    return natural.compare(a.toString(), b.toString()) < 0;
  }
  return a.toDouble() < b.toDouble();
}

}  // namespace eq::ui
