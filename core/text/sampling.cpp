#include "text/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace eq::text {

Sampler::Sampler(const SamplingParams& params) : p_(params), rng_(params.seed) {}

std::vector<double> Sampler::distribution(std::span<const float> logits, std::span<const std::int32_t> history) const {
  const std::size_t n = logits.size();
  std::vector<double> z(logits.begin(), logits.end());
  if (p_.repetitionPenalty != 1.0f) {
    std::vector<bool> seen(n, false);
    for (auto id : history)
      if (id >= 0 && static_cast<std::size_t>(id) < n) seen[static_cast<std::size_t>(id)] = true;
    for (std::size_t i = 0; i < n; ++i)
      if (seen[i]) z[i] = z[i] < 0 ? z[i] * p_.repetitionPenalty : z[i] / p_.repetitionPenalty;
  }
  std::vector<double> prob(n, 0.0);
  if (p_.temperature <= 0.0f) {  // greedy: all mass on the (first) maximum
    prob[static_cast<std::size_t>(std::max_element(z.begin(), z.end()) - z.begin())] = 1.0;
    return prob;
  }
  for (auto& v : z) v /= p_.temperature;
  // Only top-k and top-p need the tokens in order (by decreasing logit, ties by id), and with top-k only its head
  // (top-p then looks no further). Plain sampling (calibration writes thousands of tokens so) needs no order at all:
  // a sort of the whole vocabulary per token cost more than the model on small models with large vocabularies.
  std::vector<std::size_t> order;
  std::size_t keep = n;
  if (p_.topK > 0 || p_.topP < 1.0f) {
    order.resize(n);
    std::iota(order.begin(), order.end(), 0);
    auto before = [&](std::size_t a, std::size_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
    if (p_.topK > 0) keep = std::min<std::size_t>(keep, static_cast<std::size_t>(p_.topK));
    if (keep < n) std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(), before);
    else std::sort(order.begin(), order.end(), before);
  }
  auto at = [&](std::size_t i) { return order.empty() ? i : order[i]; };  // the i-th token kept
  const double mx = order.empty() ? *std::max_element(z.begin(), z.end()) : z[order[0]];
  double sum = 0;
  for (std::size_t i = 0; i < keep; ++i) sum += (prob[at(i)] = std::exp(z[at(i)] - mx));
  if (p_.topP < 1.0f) {  // smallest head of the sorted distribution whose mass reaches top_p
    double cum = 0;
    std::size_t k = 0;
    while (k < keep) {
      cum += prob[order[k]] / sum;
      ++k;
      if (cum >= p_.topP) break;
    }
    for (std::size_t i = k; i < keep; ++i) prob[order[i]] = 0;
    keep = k;
  }
  if (p_.minP > 0.0f) {  // drop tokens below min_p times the most likely one (whose weight is exp(0) = 1)
    for (std::size_t i = 0; i < keep; ++i)
      if (prob[at(i)] < p_.minP) prob[at(i)] = 0;
  }
  sum = 0;
  for (std::size_t i = 0; i < keep; ++i) sum += prob[at(i)];
  for (auto& v : prob) v /= sum;
  return prob;
}

std::int32_t Sampler::sample(std::span<const float> logits, std::span<const std::int32_t> history) {
  const auto prob = distribution(logits, history);
  if (p_.temperature <= 0.0f) return static_cast<std::int32_t>(std::max_element(prob.begin(), prob.end()) - prob.begin());
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  double cum = 0;
  std::int32_t last = 0;
  for (std::size_t i = 0; i < prob.size(); ++i) {
    if (prob[i] <= 0) continue;
    cum += prob[i];
    last = static_cast<std::int32_t>(i);
    if (u < cum) return last;
  }
  return last;  // rounding left u above the total
}

std::size_t StopStrings::find(const std::string& text) const {
  std::size_t best = std::string::npos;
  for (const auto& s : stops_)
    if (!s.empty()) best = std::min(best, text.find(s));
  return best;
}

std::size_t StopStrings::safeLength(const std::string& text) const {
  std::size_t safe = text.size();
  for (const auto& s : stops_)
    for (std::size_t len = std::min(s.size() - 1, text.size()); len > 0; --len)
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {  // the end of text begins this stop string
        safe = std::min(safe, text.size() - len);
        break;
      }
  return safe;
}

}  // namespace eq::text
