#include "widgets/rules_editor.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QPushButton>
#include <QVBoxLayout>

namespace eq::ui {

RulesEditor::RulesEditor(ModelDocument& document, QWidget* parent) : QWidget(parent) {
  model_ = new RuleListModel(document, this);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  list_ = new QListView;
  list_->setModel(model_);
  list_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  list_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed);
  list_->setToolTip(tr("Rules in the order they apply: the last rule matching a tensor's name decides. Double-click "
                       "to edit."));
  layout->addWidget(list_, 1);
  entry_ = new QLineEdit;
  entry_->setPlaceholderText(tr("e.g. mlp.down_proj=3.5 or lm_head=keep"));
  entry_->setToolTip(tr("A regular expression searched in tensor names, '=', then bits per weight or keep"));
  auto* row = new QHBoxLayout;
  row->addWidget(entry_, 1);
  auto* addButton = new QPushButton(tr("Add"));
  row->addWidget(addButton);
  layout->addLayout(row);
  auto* buttons = new QHBoxLayout;
  auto* remove = new QPushButton(tr("Remove"));
  auto* up = new QPushButton(tr("Up"));
  auto* down = new QPushButton(tr("Down"));
  for (auto* b : {remove, up, down}) buttons->addWidget(b);
  buttons->addStretch();
  layout->addLayout(buttons);
  error_ = new QLabel;
  error_->setWordWrap(true);
  error_->setStyleSheet("color: #b00020");
  error_->hide();
  layout->addWidget(error_);

  connect(addButton, &QPushButton::clicked, this, &RulesEditor::add);
  connect(entry_, &QLineEdit::returnPressed, this, &RulesEditor::add);
  connect(remove, &QPushButton::clicked, this, [this] {
    QList<int> rows;
    for (const auto& i : list_->selectionModel()->selectedIndexes()) rows << i.row();
    model_->removeRules(rows);
  });
  auto move = [this](int delta) {
    const auto i = list_->currentIndex();
    if (!i.isValid()) return;
    model_->moveRule(i.row(), delta);
    list_->setCurrentIndex(model_->index(i.row() + delta));
  };
  connect(up, &QPushButton::clicked, this, [move] { move(-1); });
  connect(down, &QPushButton::clicked, this, [move] { move(+1); });
  connect(model_, &RuleListModel::ruleRejected, this, [this](const QString& e) {
    error_->setText(e);
    error_->show();
  });
}

void RulesEditor::add() {
  QString error;
  if (model_->setRule(-1, entry_->text(), &error)) {
    entry_->clear();
    error_->hide();
  } else {
    error_->setText(error);
    error_->show();
  }
}

}  // namespace eq::ui
