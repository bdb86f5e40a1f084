#include "model/rope.h"

#include "common/error.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace eq::model {

Rope::Rope(const RopeConfig& r, std::int64_t headDim, std::int64_t maxPositions, const std::string& label)
    : headDim_(headDim) {
  if (!r.supported()) fail(Errc::Unsupported, "{}: rope type \"{}\" is not supported", label, r.type);
  if (!(r.partialRotaryFactor > 0 && r.partialRotaryFactor <= 1))  // more would rotate past the head
    fail(Errc::BadConfig, "{}: partial_rotary_factor must be in (0, 1] (got {})", label, r.partialRotaryFactor);
  rotary_ = static_cast<std::int64_t>(static_cast<double>(headDim) * r.partialRotaryFactor);
  rotary_ -= rotary_ % 2;
  const std::int64_t half = rotary_ / 2;
  invFreq_.resize(static_cast<std::size_t>(half));
  // HF computes these in float32 from an int64/float arange; do the same.
  for (std::int64_t i = 0; i < half; ++i)
    invFreq_[i] = 1.0f / std::pow(static_cast<float>(r.theta), static_cast<float>(2 * i) / static_cast<float>(rotary_));
  if (r.type == "linear") {
    for (auto& f : invFreq_) f /= r.factor;
  } else if (r.type == "llama3") {
    const double old = static_cast<double>(r.originalMaxPositions);
    const double lowWave = old / r.lowFreqFactor, highWave = old / r.highFreqFactor;
    for (auto& f : invFreq_) {
      const double wavelen = 2 * std::numbers::pi / f;
      double g = wavelen > lowWave ? f / r.factor : f;
      if (!(wavelen < highWave) && !(wavelen > lowWave)) {
        const double smooth = (old / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
        g = (1 - smooth) * g / r.factor + smooth * g;
      }
      f = g;
    }
  } else if (r.type == "yarn") {
    const double base = r.theta, dim = static_cast<double>(rotary_);
    const double orig = r.originalMaxPositions > 0 ? static_cast<double>(r.originalMaxPositions)
                                                   : static_cast<double>(maxPositions);
    attentionFactor_ = r.attentionFactor ? *r.attentionFactor : (r.factor <= 1 ? 1.0 : 0.1 * std::log(r.factor) + 1.0);
    auto correction = [&](double rotations) {
      return dim * std::log(orig / (rotations * 2 * std::numbers::pi)) / (2 * std::log(base));
    };
    double low = std::max(std::floor(correction(r.betaFast)), 0.0);
    double high = std::min(std::ceil(correction(r.betaSlow)), dim - 1);
    if (low == high) high += 0.001;
    for (std::int64_t i = 0; i < half; ++i) {
      const double posFreq = std::pow(base, static_cast<double>(2 * i) / dim);
      const double extrapolation = 1.0 / posFreq, interpolation = 1.0 / (r.factor * posFreq);
      const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
      const double extrapolationFactor = 1.0 - ramp;
      invFreq_[i] = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
    }
  }
}

void Rope::apply(float* x, std::int64_t pos) const {
  const std::int64_t half = rotary_ / 2;
  for (std::int64_t i = 0; i < half; ++i) {
    // HF: freqs = float32(pos) * inv_freq in float32; cos/sin of that, times the attention factor
    const float angle = static_cast<float>(pos) * static_cast<float>(invFreq_[i]);
    const float c = std::cos(angle) * static_cast<float>(attentionFactor_);
    const float s = std::sin(angle) * static_cast<float>(attentionFactor_);
    const float a = x[i], b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
  }
}

}  // namespace eq::model
