// Draws one chat message: the user's on a tinted card, the model's answers as Markdown (QTextDocument::setMarkdown,
// code blocks included) with their speed and context under them, notes in grey. In A/B columns an answer is drawn
// as plain text with everything from its first difference to the other column's answer highlighted.
#pragma once

#include <QHash>
#include <QStyledItemDelegate>
#include <QTextDocument>

#include <memory>

namespace eq::ui {

class MessageDelegate : public QStyledItemDelegate {
  Q_OBJECT

 public:
  using QStyledItemDelegate::QStyledItemDelegate;
  void paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const override;
  QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override;

 private:
  // The laid-out message for a width (cached by text, kind and width; a streaming answer changes its text).
  QTextDocument& document(const QModelIndex& index, int width) const;
  mutable QHash<QString, std::shared_ptr<QTextDocument>> cache_;
};

}  // namespace eq::ui
