// The layer table: one row per compressible tensor of the open model, with what the analysis and the plan predict
// and what the last compression measured. The target column is editable ("3.5" or "keep"); an edit becomes a rule
// of the tensor's own (ModelDocument::setTensorBits). Only the rows and columns that change are announced.
#pragma once

#include "model_document.h"

#include <QAbstractTableModel>

#include <vector>

namespace eq::ui {

class LayerTableModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column {
    Name, Block, Role, Shape, Parameters, Target, PredictedBits, MeasuredBits, Entropy, Codes, PredictedError,
    MeasuredError, PredictedBytes, MeasuredBytes, Status, ColumnCount
  };
  // The value for sorting and export, under the display text.
  static constexpr int SortRole = Qt::UserRole + 1;

  explicit LayerTableModel(ModelDocument& document, QObject* parent = nullptr);

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
  Qt::ItemFlags flags(const QModelIndex& index) const override;
  bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;

  QString tensorAt(int row) const;
  int rowOf(const QString& tensor) const;  // -1 when not in the table
  // The table as CSV (display text, header first) or JSON (one object per row, numbers as numbers).
  QString toCsv() const;
  QByteArray toJson() const;

 private:
  void rebuild();
  void refresh(int firstColumn, int lastColumn);

  ModelDocument& doc_;
  std::vector<std::size_t> rows_;  // positions in doc_.analysis().tensors
};

}  // namespace eq::ui
