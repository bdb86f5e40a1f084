// The plan's rules, shown and editable: one "REGEX=BITS" or "REGEX=keep" per line, in order (later rules win), the
// same as the CLI's --layer-bits. Add, edit in place, remove, reorder; a rule that does not parse is refused with
// the core's reason.
#pragma once

#include "models/rule_list_model.h"

#include <QWidget>

class QLabel;
class QLineEdit;
class QListView;

namespace eq::ui {

class RulesEditor : public QWidget {
  Q_OBJECT

 public:
  explicit RulesEditor(ModelDocument& document, QWidget* parent = nullptr);
  RuleListModel& model() { return *model_; }

 private:
  void add();
  RuleListModel* model_;
  QListView* list_;
  QLineEdit* entry_;
  QLabel* error_;
};

}  // namespace eq::ui
