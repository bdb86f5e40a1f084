// Typed errors of the core library: a stable numbered code plus one sentence that names the file and the problem.
// The CLI prints the sentence; the GUI shows it; tests compare both.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace eq {

// Stable numbers: scripts and the GUI may switch on them. Append only.
enum class Errc : int {
  Io = 1,              // read/write/open failed (errno text in the message)
  NotFound = 2,        // a file or folder does not exist
  Truncated = 3,       // a file ends before the data it declares
  Corrupt = 4,         // structure is inconsistent (bad offsets, overlaps, sizes)
  InvalidJson = 5,     // JSON that does not parse or has the wrong types
  UnknownDtype = 6,    // a dtype string we do not know
  ShapeMismatch = 7,   // shape x dtype size differs from the byte range
  MissingShard = 8,    // a shard named by the index is absent
  MissingTensor = 9,   // a tensor named by the index is not in its shard
  BadConfig = 10,      // config.json lacks a required field or has an impossible value
  UnsafeArchive = 11,  // an archive entry would escape its folder or is a link/device
  Unsupported = 12,    // a valid input we do not handle (format, architecture, rope type)
  Cancelled = 13,      // the caller asked to stop
  InvalidArgument = 14,// a caller passed something impossible
  NoSpace = 15,        // the disk is full
};

const char* errcName(Errc code);

// The setting of a job an error concerns, where it concerns one. Core messages do not name command-line flags:
// the CLI puts the flag in front ("--calibration self: model: ..."), the GUI names its control. Append only.
enum class Setting : std::uint8_t {
  None,
  LayerRule,           // a per-tensor bits rule (CLI --layer-bits)
  GivenScales,         // a file of given log2 row scales (--scales)
  SelfCalibration,     // calibration on text the model writes (--calibration self)
  TextCalibration,     // calibration on the user's text (--calibration-text)
  CalibrationInputs,   // whose layer inputs calibration uses (--calibration-inputs)
  MeasuredAllocation,  // sensitivities measured on the model's text (--allocation measured)
  Plan,                // a saved plan (--plan)
};
const char* settingName(Setting setting);  // "layer_rule", "given_scales", ...

class Error : public std::runtime_error {
 public:
  Error(Errc code, std::string message, Setting setting = Setting::None)
      : std::runtime_error(std::move(message)), code_(code), setting_(setting) {}
  Errc code() const noexcept { return code_; }
  Setting setting() const noexcept { return setting_; }
  // The same error with "context: " in front, for errors that cross a stage boundary.
  Error withContext(std::string_view context) const;
  // The same error, marked as concerning `setting` unless it already names one (the innermost is the most precise).
  Error about(Setting setting) const;

 private:
  Errc code_;
  Setting setting_ = Setting::None;
};

template <typename... Args>
[[noreturn]] void fail(Errc code, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(code, fmt::format(format, std::forward<Args>(args)...));
}

// Throws Io (or NoSpace for ENOSPC/EDQUOT) with "<what>: <strerror(err)>".
[[noreturn]] void failErrno(int err, std::string_view what);

}  // namespace eq
