#include "widgets/controls_panel.h"

#include "common/units.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPushButton>
#include <QSlider>
#include <QToolButton>

namespace eq::ui {

ControlsPanel::ControlsPanel(ModelDocument& document, QWidget* parent) : QWidget(parent), doc_(document) {
  auto* form = new QFormLayout(this);
  form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);

  slider_ = new QSlider(Qt::Horizontal);
  slider_->setRange(150, 800);  // hundredths of a bit
  slider_->setToolTip(tr("Target effective bits per weight: everything stored for the compressed tensors (codes, "
                         "tables, scales), averaged over them"));
  bits_ = new QDoubleSpinBox;
  bits_->setRange(1.5, 8.0);
  bits_->setDecimals(2);
  bits_->setSingleStep(0.1);
  bits_->setSuffix(tr(" bits"));
  bits_->setToolTip(slider_->toolTip());
  auto* target = new QHBoxLayout;
  target->addWidget(slider_, 1);
  target->addWidget(bits_);
  form->addRow(tr("Target"), target);
  auto* presets = new QHBoxLayout;
  for (const double b : {4.0, 3.0, 2.5, 2.1}) {
    auto* p = new QPushButton(QString::number(b));
    p->setToolTip(tr("%1 effective bits per weight").arg(b));
    p->setFixedWidth(p->fontMetrics().horizontalAdvance("0000") + 16);
    connect(p, &QPushButton::clicked, this, [this, b] { setTargetBits(b); });
    presets->addWidget(p);
  }
  presets->addStretch();
  form->addRow(tr("Presets"), presets);

  format_ = new QComboBox;
  format_->addItem("FP8 E4M3", "fp8");
  format_->addItem("Int8", "int8");
  format_->setToolTip(tr("The 8-bit code each weight becomes; FP8 spends its values where weights are dense"));
  form->addRow(tr("Format"), format_);

  method_ = new QComboBox;
  method_->addItem("EntQuant", "entquant");
  for (const char* m : {"rtn4", "rtn3", "rtn2", "nf4"}) method_->addItem(QString(m).toUpper(), m);
  method_->setToolTip(tr("EntQuant, or a classic group-wise baseline (round to nearest, NormalFloat4) stored in the "
                         "same container, to compare at equal size"));
  form->addRow(tr("Method"), method_);

  objective_ = new QComboBox;
  for (const auto name : quant::objectiveNames()) objective_->addItem(QString::fromStdString(std::string(name)));
  objective_->setToolTip(tr("How row scales are chosen. ecsq-mse (default): relative MSE plus the codes' real "
                            "entropy-coded length; paper: the paper's objective, solved exactly"));
  form->addRow(tr("Objective"), objective_);

  allocation_ = new QComboBox;
  for (const char* a : {"uniform", "global", "depth"}) allocation_->addItem(a);
  allocation_->setToolTip(tr("How the bits are spread: uniform gives every layer the target; global moves bits to "
                             "where they lower the error most; depth (default) does that with the first and last "
                             "blocks and v / down projections counting more. Rules fix layers outside it."));
  form->addRow(tr("Allocation"), allocation_);

  holdTotal_ = new QCheckBox(tr("Keep the total"));
  holdTotal_->setToolTip(tr("On: layers you set (rules, the table, the charts) take their bits from the others, so "
                            "the file size stays. Off: they are outside the target, as the CLI's --layer-bits."));
  form->addRow(QString(), holdTotal_);

  calibration_ = new QComboBox;
  calibration_->addItem(tr("None (data-free)"));
  calibration_->addItem(tr("The model's own text"));
  calibration_->addItem(tr("A text file"));
  calibration_->setToolTip(tr("Error feedback: choose each layer's codes so that its outputs, not only its weights, "
                              "stay close, from text the model writes itself or from a file of yours"));
  form->addRow(tr("Calibration"), calibration_);
  calibrationFile_ = new QLineEdit;
  calibrationFile_->setPlaceholderText(tr("UTF-8 text file"));
  browse_ = new QToolButton;
  browse_->setText("...");
  auto* fileRow = new QHBoxLayout;
  fileRow->addWidget(calibrationFile_, 1);
  fileRow->addWidget(browse_);
  form->addRow(QString(), fileRow);
  calibrationCost_ = new QLabel;
  calibrationCost_->setWordWrap(true);
  form->addRow(QString(), calibrationCost_);

  connect(slider_, &QSlider::valueChanged, this, [this](int v) {
    if (!updating_) bits_->setValue(v / 100.0);
  });
  connect(bits_, &QDoubleSpinBox::valueChanged, this, [this](double v) {
    const bool fromDocument = updating_;
    updating_ = true;
    slider_->setValue(static_cast<int>(std::lround(v * 100)));
    updating_ = fromDocument;
    if (!fromDocument) toDocument();
  });
  for (QComboBox* c : {format_, method_, objective_, allocation_})
    connect(c, &QComboBox::currentIndexChanged, this, [this] { toDocument(); });
  connect(holdTotal_, &QCheckBox::toggled, this, [this] { toDocument(); });
  connect(calibration_, &QComboBox::currentIndexChanged, this, [this](int i) {
    doc_.codeSettings().calibration = static_cast<CalibrationSource>(i);
    updateCalibrationCost();
  });
  connect(calibrationFile_, &QLineEdit::textChanged, this, [this](const QString& t) {
    doc_.codeSettings().calibrationFile = t;
  });
  connect(browse_, &QToolButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Calibration text"), QString(), tr("Text (*.txt);;All files (*)"));
    if (!f.isEmpty()) calibrationFile_->setText(f);
  });
  connect(&doc_, &ModelDocument::planChanged, this, &ControlsPanel::fromDocument);
  connect(&doc_, &ModelDocument::modelOpened, this, &ControlsPanel::updateCalibrationCost);
  fromDocument();
  updateCalibrationCost();
}

void ControlsPanel::setTargetBits(double bits) { bits_->setValue(bits); }
double ControlsPanel::targetBits() const { return bits_->value(); }

void ControlsPanel::fromDocument() {
  if (updating_) return;
  updating_ = true;
  const PlanSettings& s = doc_.settings();
  bits_->setValue(s.target.value);
  slider_->setValue(static_cast<int>(std::lround(s.target.value * 100)));
  format_->setCurrentIndex(s.format == quant::CodeFormat::Int8 ? 1 : 0);
  method_->setCurrentIndex(static_cast<int>(s.method));
  objective_->setCurrentIndex(static_cast<int>(s.objective));
  allocation_->setCurrentIndex(std::min(static_cast<int>(s.allocation), 2));
  holdTotal_->setChecked(s.holdTotal);
  const bool entquant = s.method == Method::EntQuant;
  for (QWidget* w : {static_cast<QWidget*>(bits_), static_cast<QWidget*>(slider_), static_cast<QWidget*>(objective_),
                     static_cast<QWidget*>(allocation_), static_cast<QWidget*>(holdTotal_),
                     static_cast<QWidget*>(calibration_), static_cast<QWidget*>(format_)})
    w->setEnabled(entquant);
  updating_ = false;
}

void ControlsPanel::toDocument() {
  if (updating_) return;
  PlanSettings s = doc_.settings();
  s.target = {quant::RateTarget::Mode::Bits, bits_->value()};
  s.format = format_->currentIndex() == 1 ? quant::CodeFormat::Int8 : quant::CodeFormat::Fp8E4M3;
  s.method = static_cast<Method>(method_->currentIndex());
  s.objective = static_cast<quant::Objective>(objective_->currentIndex());
  s.allocation = static_cast<Allocation>(allocation_->currentIndex());
  s.holdTotal = holdTotal_->isChecked();
  updating_ = true;  // the document's planChanged comes back here
  doc_.setSettings(s);
  updating_ = false;
  fromDocument();
}

void ControlsPanel::updateCalibrationCost() {
  const int c = calibration_->currentIndex();
  calibrationFile_->setVisible(c == 2);
  browse_->setVisible(c == 2);
  if (c == 0) {
    calibrationCost_->setText(tr("Data-free: the weights alone decide the codes."));
    return;
  }
  if (!doc_.hasModel() || !doc_.model().report.config) {
    calibrationCost_->setText(tr("Needs a model the engine runs (config.json)."));
    return;
  }
  const CalibrationCost cost = estimateCalibration(*doc_.model().report.config, doc_.model().report.parametersTotal,
                                                   CalibrationOptions{});
  calibrationCost_->setText(
      tr("%1 the model runs %2 tokens through every block (%3 inputs), holding up to %4 of memory; "
         "about 12-14x the time of compressing without calibration (measured on the demo model).")
          .arg(c == 1 ? tr("It writes its own texts first, then") : tr("Windows of your file are tokenized, then"))
          .arg(QLocale().toString(static_cast<qlonglong>(cost.tokens)))
          .arg(cost.shift ? tr("shift") : tr("original"))
          .arg(QString::fromStdString(formatBytes(cost.memoryBytes))));
}

}  // namespace eq::ui
