// What the open model is: architecture, parameters (total, compressible, kept), size on disk, memory to run it
// (bf16, FP8 codes, KV cache per token), whether it has a tokenizer and a chat template; for an .eqz file, how it
// was compressed.
#pragma once

#include "model_document.h"

#include <QWidget>

class QLabel;

namespace eq::ui {

class OverviewPanel : public QWidget {
  Q_OBJECT

 public:
  explicit OverviewPanel(ModelDocument& document, QWidget* parent = nullptr);
  QString text() const;  // everything shown, as plain text (tests)

 private:
  void refresh();
  ModelDocument& doc_;
  QLabel* label_;
};

}  // namespace eq::ui
