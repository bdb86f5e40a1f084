#include "plots/plot_base.h"

#include <QContextMenuEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHelpEvent>
#include <QMenu>
#include <QMessageBox>
#include <QSvgGenerator>
#include <QToolTip>

namespace eq::ui {

PlotBase::PlotBase(QWidget* parent) : QCustomPlot(parent) {
  setMinimumSize(220, 160);
  setNoAntialiasingOnDrag(true);
  styleAxes();
}

void PlotBase::styleAxes() {
  for (QCPAxis* a : {xAxis, yAxis, xAxis2, yAxis2}) {
    a->grid()->setPen(QPen(QColor(220, 220, 220), 0, Qt::DotLine));
    a->setTickLabelFont(font());
    a->setLabelFont(font());
  }
}

bool PlotBase::exportTo(const QString& path, QString* error) {
  const QString ext = QFileInfo(path).suffix().toLower();
  bool ok = false;
  if (ext == "png") {
    ok = savePng(path, width(), height(), 2.0);
  } else if (ext == "pdf") {
    ok = savePdf(path, width(), height());
  } else if (ext == "svg") {
    QSvgGenerator svg;
    svg.setFileName(path);
    svg.setSize(size());
    svg.setViewBox(QRect(QPoint(0, 0), size()));
    svg.setTitle(exportName_);
    QCPPainter painter;
    ok = painter.begin(&svg);
    if (ok) {
      toPainter(&painter, width(), height());
      ok = painter.end();
    }
  } else {
    if (error) *error = QStringLiteral("%1: choose .png, .svg or .pdf").arg(path);
    return false;
  }
  if (!ok && error) *error = QStringLiteral("%1: cannot be written").arg(path);
  return ok;
}

bool PlotBase::event(QEvent* e) {
  if (e->type() == QEvent::ToolTip) {
    auto* help = static_cast<QHelpEvent*>(e);
    const QString tip = toolTipAt(help->pos());
    if (tip.isEmpty()) QToolTip::hideText();
    else QToolTip::showText(help->globalPos(), tip, this);
    return true;
  }
  return QCustomPlot::event(e);
}

void PlotBase::contextMenuEvent(QContextMenuEvent* e) {
  QMenu menu(this);
  QAction* exportAction = menu.addAction(tr("Export plot..."));
  if (menu.exec(e->globalPos()) != exportAction) return;
  const QString path = QFileDialog::getSaveFileName(this, tr("Export plot"), exportName_ + ".png",
                                                    tr("PNG image (*.png);;SVG image (*.svg);;PDF document (*.pdf)"));
  if (path.isEmpty()) return;
  QString error;
  if (!exportTo(path, &error)) QMessageBox::warning(this, tr("Export plot"), error);
}

}  // namespace eq::ui
