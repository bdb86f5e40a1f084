// The layer table's filter and sort: rows whose tensor name contains the filter text, or matches it as a regular
// expression when it is one; columns sort by their values, not their text.
#pragma once

#include <QRegularExpression>
#include <QSortFilterProxyModel>

namespace eq::ui {

class LayerFilterModel : public QSortFilterProxyModel {
  Q_OBJECT

 public:
  explicit LayerFilterModel(QObject* parent = nullptr);
  // Plain text matches as a substring; with regex on, as a regular expression (an invalid one matches nothing
  // and valid() says so).
  void setFilter(const QString& text, bool regex);
  bool valid() const { return valid_; }

 protected:
  bool filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const override;
  bool lessThan(const QModelIndex& left, const QModelIndex& right) const override;

 private:
  QString text_;
  QRegularExpression re_;
  bool regex_ = false, valid_ = true;
};

}  // namespace eq::ui
