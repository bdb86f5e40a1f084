// The global controls of a compression: target bits (slider, spin box, presets), code format, method, objective,
// allocation, "keep the total", and calibration with what it will cost before it runs. Every change goes to the
// document at once (planning is instant); the controls follow the document when a plan is loaded.
#pragma once

#include "model_document.h"

#include <QWidget>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QSlider;
class QToolButton;

namespace eq::ui {

class ControlsPanel : public QWidget {
  Q_OBJECT

 public:
  explicit ControlsPanel(ModelDocument& document, QWidget* parent = nullptr);
  // The target bits control (tests and the screenshot tool set it as a user would).
  void setTargetBits(double bits);
  double targetBits() const;

 private:
  void fromDocument();       // show the document's settings
  void toDocument();         // push the controls' settings
  void updateCalibrationCost();

  ModelDocument& doc_;
  QSlider* slider_;
  QDoubleSpinBox* bits_;
  QComboBox *format_, *method_, *objective_, *allocation_, *calibration_;
  QCheckBox* holdTotal_;
  QLineEdit* calibrationFile_;
  QToolButton* browse_;
  QLabel* calibrationCost_;
  bool updating_ = false;
};

}  // namespace eq::ui
