#include "chat/chat_message_model.h"

#include <QJsonArray>
#include <QJsonObject>

namespace eq::ui {

int ChatMessageModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(messages_.size());
}

QVariant ChatMessageModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const ChatMessage& m = messages_[static_cast<std::size_t>(index.row())];
  switch (role) {
    case Qt::DisplayRole: return m.text;
    case KindRole: return static_cast<int>(m.kind);
    case StreamingRole: return m.streaming;
    case StatsTextRole: return m.stats ? statsText(*m.stats) : QString();
    case DiffersAtRole: return m.differsAt;
    default: return {};
  }
}

QString ChatMessageModel::statsText(const ChatStats& s) {
  QString t = tr("%1 prompt tokens at %2 tok/s").arg(s.promptTokens).arg(s.promptTokensPerSecond(), 0, 'f', 0);
  if (s.reusedTokens) t += tr(" (%1 reused)").arg(s.reusedTokens);
  t += tr(", %1 generated at %2 tok/s, first token after %3 s; context %4 / %5")
           .arg(s.generatedTokens)
           .arg(s.tokensPerSecond(), 0, 'f', 1)
           .arg(s.firstTokenSeconds, 0, 'f', 2)
           .arg(s.contextUsed)
           .arg(s.contextLength);
  if (s.stopReason != "eos") t += tr("; stopped: %1").arg(QString(s.stopReason).replace('_', ' '));
  return t;
}

void ChatMessageModel::addUser(const QString& text) {
  beginInsertRows({}, rowCount(), rowCount());
  messages_.push_back({ChatMessage::Kind::User, text, false, {}, -1});
  endInsertRows();
}

void ChatMessageModel::beginAnswer() {
  beginInsertRows({}, rowCount(), rowCount());
  messages_.push_back({ChatMessage::Kind::Assistant, QString(), true, {}, -1});
  endInsertRows();
}

void ChatMessageModel::appendToAnswer(const QString& delta) {
  for (std::size_t i = messages_.size(); i-- > 0;)
    if (messages_[i].kind == ChatMessage::Kind::Assistant && messages_[i].streaming) {
      messages_[i].text += delta;
      const QModelIndex at = index(static_cast<int>(i));
      emit dataChanged(at, at, {Qt::DisplayRole});
      return;
    }
}

void ChatMessageModel::finishAnswer(const std::optional<ChatStats>& stats) {
  for (std::size_t i = messages_.size(); i-- > 0;)
    if (messages_[i].kind == ChatMessage::Kind::Assistant && messages_[i].streaming) {
      messages_[i].streaming = false;
      messages_[i].stats = stats;
      const QModelIndex at = index(static_cast<int>(i));
      emit dataChanged(at, at);
      return;
    }
}

void ChatMessageModel::addNote(const QString& text) {
  beginInsertRows({}, rowCount(), rowCount());
  messages_.push_back({ChatMessage::Kind::Note, text, false, {}, -1});
  endInsertRows();
}

QString ChatMessageModel::takeLastExchange() {
  for (std::size_t i = messages_.size(); i-- > 0;)
    if (messages_[i].kind == ChatMessage::Kind::User) {
      const QString text = messages_[i].text;
      beginRemoveRows({}, static_cast<int>(i), rowCount() - 1);
      messages_.resize(i);
      endRemoveRows();
      return text;
    }
  return {};
}

void ChatMessageModel::setDiffersAt(int row, int position) {
  if (row < 0 || row >= rowCount()) return;
  messages_[static_cast<std::size_t>(row)].differsAt = position;
  emit dataChanged(index(row), index(row), {DiffersAtRole});
}

void ChatMessageModel::clear() {
  beginResetModel();
  messages_.clear();
  endResetModel();
}

QString ChatMessageModel::lastUserText() const {
  for (std::size_t i = messages_.size(); i-- > 0;)
    if (messages_[i].kind == ChatMessage::Kind::User) return messages_[i].text;
  return {};
}

QString ChatMessageModel::toMarkdown(const QString& title) const {
  QString md = QStringLiteral("# %1\n\n").arg(title);
  for (const ChatMessage& m : messages_) {
    switch (m.kind) {
      case ChatMessage::Kind::User: md += "**You:**\n\n" + m.text + "\n\n"; break;
      case ChatMessage::Kind::Assistant:
        md += "**Model:**\n\n" + m.text + "\n\n";
        if (m.stats) md += "*" + statsText(*m.stats) + "*\n\n";
        break;
      case ChatMessage::Kind::Note: md += "> " + m.text + "\n\n"; break;
    }
  }
  return md;
}

QJsonDocument ChatMessageModel::toJson(const QString& model) const {
  QJsonArray list;
  for (const ChatMessage& m : messages_) {
    QJsonObject o{{"role", m.kind == ChatMessage::Kind::User ? "user" : m.kind == ChatMessage::Kind::Assistant ? "assistant" : "note"},
                  {"content", m.text}};
    if (m.stats) {
      const ChatStats& s = *m.stats;
      o["stats"] = QJsonObject{{"prompt_tokens", static_cast<qint64>(s.promptTokens)},
                               {"reused_tokens", static_cast<qint64>(s.reusedTokens)},
                               {"generated_tokens", static_cast<qint64>(s.generatedTokens)},
                               {"prompt_tokens_per_second", s.promptTokensPerSecond()},
                               {"generation_tokens_per_second", s.tokensPerSecond()},
                               {"first_token_seconds", s.firstTokenSeconds},
                               {"context_used", static_cast<qint64>(s.contextUsed)},
                               {"context_length", static_cast<qint64>(s.contextLength)},
                               {"stop_reason", s.stopReason}};
    }
    list.append(o);
  }
  return QJsonDocument(QJsonObject{{"model", model}, {"messages", list}});
}

}  // namespace eq::ui
