// Choosing the next token from logits, as HF transformers' generate() does: repetition penalty, then temperature,
// top-k, top-p and min-p, then a draw from the remaining distribution (seeded), or the argmax when greedy.
// Plus stop strings that may span token boundaries, with the hold-back a streaming UI needs.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace eq::text {

struct SamplingParams {
  float temperature = 1.0f;        // 0 = greedy
  int topK = 0;                    // 0 = off
  float topP = 1.0f;               // 1 = off
  float minP = 0.0f;               // 0 = off
  float repetitionPenalty = 1.0f;  // 1 = off; > 1 discourages tokens already in the history
  std::uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // `history` holds the ids seen so far (prompt and generated) for the repetition penalty.
  std::int32_t sample(std::span<const float> logits, std::span<const std::int32_t> history);
  // The probabilities sample() draws from, after every processor (zeros for removed tokens).
  std::vector<double> distribution(std::span<const float> logits, std::span<const std::int32_t> history) const;

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

// Stop strings over generated text that arrives in pieces (tokens).
class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Position where the earliest stop string starts in `text`, or npos.
  std::size_t find(const std::string& text) const;
  // How much of `text` can be shown now: everything except a tail that could still grow into a stop string.
  std::size_t safeLength(const std::string& text) const;

 private:
  std::vector<std::string> stops_;
};

}  // namespace eq::text
