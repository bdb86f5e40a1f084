#include "common/error.h"

#include <cerrno>
#include <cstring>

namespace eq {

const char* errcName(Errc code) {
  switch (code) {
    case Errc::Io: return "io";
    case Errc::NotFound: return "not_found";
    case Errc::Truncated: return "truncated";
    case Errc::Corrupt: return "corrupt";
    case Errc::InvalidJson: return "invalid_json";
    case Errc::UnknownDtype: return "unknown_dtype";
    case Errc::ShapeMismatch: return "shape_mismatch";
    case Errc::MissingShard: return "missing_shard";
    case Errc::MissingTensor: return "missing_tensor";
    case Errc::BadConfig: return "bad_config";
    case Errc::UnsafeArchive: return "unsafe_archive";
    case Errc::Unsupported: return "unsupported";
    case Errc::Cancelled: return "cancelled";
    case Errc::InvalidArgument: return "invalid_argument";
    case Errc::NoSpace: return "no_space";
  }
  return "unknown";
}

const char* settingName(Setting setting) {
  switch (setting) {
    case Setting::None: return "none";
    case Setting::LayerRule: return "layer_rule";
    case Setting::GivenScales: return "given_scales";
    case Setting::SelfCalibration: return "self_calibration";
    case Setting::TextCalibration: return "text_calibration";
    case Setting::CalibrationInputs: return "calibration_inputs";
    case Setting::MeasuredAllocation: return "measured_allocation";
    case Setting::Plan: return "plan";
  }
  return "none";
}

Error Error::withContext(std::string_view context) const {
  return Error(code_, fmt::format("{}: {}", context, what()), setting_);
}

Error Error::about(Setting setting) const {
  return Error(code_, what(), setting_ == Setting::None ? setting : setting_);
}

void failErrno(int err, std::string_view what) {
  const Errc code = (err == ENOSPC || err == EDQUOT) ? Errc::NoSpace : (err == ENOENT ? Errc::NotFound : Errc::Io);
  throw Error(code, fmt::format("{}: {}", what, std::strerror(err)));
}

}  // namespace eq
