// The conversation the chat pane shows, owned by the GUI thread: the user's messages, the answers (growing while
// they stream in, with their speed and context once done) and notes (a context that had to drop old messages, a
// stopped answer, an error). The worker never touches it: its deltas arrive as queued signals and are appended
// here. Exports to Markdown and JSON.
#pragma once

#include "chat/chat_worker.h"

#include <QAbstractListModel>
#include <QJsonDocument>

#include <optional>
#include <vector>

namespace eq::ui {

struct ChatMessage {
  enum class Kind { User, Assistant, Note };
  Kind kind = Kind::User;
  QString text;
  bool streaming = false;
  std::optional<ChatStats> stats;
  int differsAt = -1;  // A/B: where this answer first differs from the other column's (-1: no difference known)
};

class ChatMessageModel : public QAbstractListModel {
  Q_OBJECT

 public:
  enum Roles { KindRole = Qt::UserRole + 1, StreamingRole, StatsTextRole, DiffersAtRole };
  using QAbstractListModel::QAbstractListModel;

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;

  void addUser(const QString& text);
  void beginAnswer();
  void appendToAnswer(const QString& delta);  // to the streaming answer
  void finishAnswer(const std::optional<ChatStats>& stats);
  void addNote(const QString& text);
  // Removes the last exchange (the last user message and everything after it); returns the user's text.
  QString takeLastExchange();
  void setDiffersAt(int row, int position);
  void clear();

  const std::vector<ChatMessage>& messages() const { return messages_; }
  QString lastUserText() const;
  QString toMarkdown(const QString& title) const;
  QJsonDocument toJson(const QString& model) const;
  // "12 prompt tokens at 830 tok/s, 64 generated at 41.2 tok/s, first token after 0.02 s; context 210 / 4096"
  static QString statsText(const ChatStats& s);

 private:
  std::vector<ChatMessage> messages_;
};

}  // namespace eq::ui
