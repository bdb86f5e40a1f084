#include "widgets/message_banner.h"

#include <QAction>
#include <QHBoxLayout>
#include <QLabel>
#include <QToolButton>

namespace eq::ui {

MessageBanner::MessageBanner(QWidget* parent) : QFrame(parent) {
  setFrameShape(QFrame::StyledPanel);
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(8, 4, 4, 4);
  label_ = new QLabel;
  label_->setWordWrap(true);
  label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(label_, 1);
  buttons_ = new QHBoxLayout;
  layout->addLayout(buttons_);
  auto* close = new QToolButton;
  close->setText(QStringLiteral("\u2715"));
  close->setToolTip(tr("Dismiss"));
  close->setAutoRaise(true);
  layout->addWidget(close);
  connect(close, &QToolButton::clicked, this, &QWidget::hide);
  hide();
}

void MessageBanner::showMessage(Kind kind, const QString& text, const QList<QAction*>& actions) {
  kind_ = kind;
  setStyleSheet(kind == Kind::Error ? "eq--ui--MessageBanner { background: #fdecea; border: 1px solid #e0a0a0; }"
                                    : "eq--ui--MessageBanner { background: #eaf5ea; border: 1px solid #a0c8a0; }");
  label_->setText(text);
  while (QLayoutItem* item = buttons_->takeAt(0)) {
    delete item->widget();
    delete item;
  }
  for (QAction* a : actions) {
    auto* b = new QToolButton;
    b->setDefaultAction(a);
    b->setToolButtonStyle(Qt::ToolButtonTextOnly);
    buttons_->addWidget(b);
  }
  show();
}

QString MessageBanner::text() const { return label_->text(); }

}  // namespace eq::ui
