#include "chat/message_delegate.h"

#include "chat/chat_message_model.h"

#include <QAbstractTextDocumentLayout>
#include <QPainter>

namespace eq::ui {
namespace {
constexpr int kPad = 8;
}

QTextDocument& MessageDelegate::document(const QModelIndex& index, int width) const {
  const auto kind = static_cast<ChatMessage::Kind>(index.data(ChatMessageModel::KindRole).toInt());
  const QString text = index.data(Qt::DisplayRole).toString();
  const QString stats = index.data(ChatMessageModel::StatsTextRole).toString();
  const int differs = index.data(ChatMessageModel::DiffersAtRole).toInt();
  const bool streaming = index.data(ChatMessageModel::StreamingRole).toBool();
  const QString key = QStringLiteral("%1|%2|%3|%4|%5|").arg(static_cast<int>(kind)).arg(width).arg(differs)
                          .arg(streaming).arg(stats) + text;
  if (auto it = cache_.find(key); it != cache_.end()) return **it;
  if (cache_.size() > 400) cache_.clear();
  auto doc = std::make_shared<QTextDocument>();
  doc->setDocumentMargin(kPad);
  doc->setTextWidth(width);
  QString footer;
  if (!stats.isEmpty()) footer = QStringLiteral("<p style='color:gray; font-size:small'>%1</p>").arg(stats.toHtmlEscaped());
  if (kind == ChatMessage::Kind::Note) {
    doc->setHtml(QStringLiteral("<p style='color:gray'><i>%1</i></p>").arg(text.toHtmlEscaped()));
  } else if (differs >= 0) {
    const QString same = text.left(differs).toHtmlEscaped(), rest = text.mid(differs).toHtmlEscaped();
    doc->setHtml(QStringLiteral("<p style='white-space:pre-wrap'>%1<span style='background:#ffe08a'>%2</span></p>%3")
                     .arg(same, rest.isEmpty() ? QStringLiteral("\u2009") : rest, footer));
  } else {
    doc->setMarkdown(text.isEmpty() && streaming ? QStringLiteral("...") : text);
    if (!footer.isEmpty()) {
      QTextCursor c(doc.get());
      c.movePosition(QTextCursor::End);
      c.insertHtml("<br>" + footer);
    }
  }
  cache_.insert(key, doc);
  return *doc;
}

QSize MessageDelegate::sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const {
  const int width = std::max(200, option.rect.width() > 0 ? option.rect.width() : 600) - 2 * kPad;
  const QTextDocument& d = document(index, width);
  return {width + 2 * kPad, static_cast<int>(d.size().height()) + kPad};
}

void MessageDelegate::paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const {
  const auto kind = static_cast<ChatMessage::Kind>(index.data(ChatMessageModel::KindRole).toInt());
  const QRect card = option.rect.adjusted(kPad / 2, kPad / 4, -kPad / 2, -kPad / 4);
  painter->save();
  painter->setRenderHint(QPainter::Antialiasing);
  if (kind == ChatMessage::Kind::User) {
    painter->setPen(Qt::NoPen);
    painter->setBrush(QColor(228, 238, 250));
    painter->drawRoundedRect(card, 6, 6);
  } else if (kind == ChatMessage::Kind::Assistant) {
    painter->setPen(QPen(QColor(220, 220, 220)));
    painter->setBrush(Qt::white);
    painter->drawRoundedRect(card, 6, 6);
  }
  if (option.state & QStyle::State_Selected) {
    painter->setPen(QPen(option.palette.highlight().color(), 2));
    painter->setBrush(Qt::NoBrush);
    painter->drawRoundedRect(card, 6, 6);
  }
  QTextDocument& d = document(index, option.rect.width() - 2 * kPad);
  painter->translate(option.rect.left() + kPad / 2, option.rect.top());
  d.drawContents(painter);
  painter->restore();
}

}  // namespace eq::ui
