// A line across the top of the window for what the user must see without a dialog in the way: an error opening
// a model (the core's sentence, naming the file), or the result of a compression with actions on it.
#pragma once

#include <QFrame>

class QHBoxLayout;
class QLabel;

namespace eq::ui {

class MessageBanner : public QFrame {
  Q_OBJECT

 public:
  enum class Kind { Error, Info };
  explicit MessageBanner(QWidget* parent = nullptr);
  // Shows `text`; `actions` become buttons beside it (removed with the next message).
  void showMessage(Kind kind, const QString& text, const QList<QAction*>& actions = {});
  QString text() const;
  Kind kind() const { return kind_; }

 private:
  QLabel* label_;
  QHBoxLayout* buttons_;
  Kind kind_ = Kind::Info;
};

}  // namespace eq::ui
