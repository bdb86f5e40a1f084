// The plan's rules as an editable list, one "REGEX=BITS" or "REGEX=keep" per row, in the order they apply (later
// rules win), with the same meaning as the CLI's --layer-bits. Edits go to the document, which re-plans.
#pragma once

#include "model_document.h"

#include <QAbstractListModel>

namespace eq::ui {

class RuleListModel : public QAbstractListModel {
  Q_OBJECT

 public:
  explicit RuleListModel(ModelDocument& document, QObject* parent = nullptr);
  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  Qt::ItemFlags flags(const QModelIndex& index) const override;
  bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;

  // "REGEX=B" or "REGEX=keep": appended, or (row >= 0) replacing that row. False with `error` set for a rule that
  // does not parse (the core's sentence).
  bool setRule(int row, const QString& text, QString* error = nullptr);
  void removeRules(QList<int> rows);
  void moveRule(int row, int delta);  // up (-1) or down (+1)

 signals:
  void ruleRejected(const QString& error);

 private:
  void sync();
  ModelDocument& doc_;
  std::vector<LayerRule> rules_;
};

}  // namespace eq::ui
