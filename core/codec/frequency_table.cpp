#include "codec/frequency_table.h"

#include "common/error.h"

#include <cmath>
#include <queue>

namespace eq::codec {

SymbolCounts countSymbols(std::span<const std::uint8_t> symbols) {
  // Four sub-histograms hide the store-to-load latency of runs of equal symbols.
  std::array<std::array<std::uint64_t, 256>, 4> h{};
  std::size_t i = 0;
  for (; i + 4 <= symbols.size(); i += 4) {
    ++h[0][symbols[i]];
    ++h[1][symbols[i + 1]];
    ++h[2][symbols[i + 2]];
    ++h[3][symbols[i + 3]];
  }
  for (; i < symbols.size(); ++i) ++h[0][symbols[i]];
  SymbolCounts c{};
  for (int s = 0; s < 256; ++s) c[s] = h[0][s] + h[1][s] + h[2][s] + h[3][s];
  return c;
}

double shannonBits(const SymbolCounts& counts) {
  double total = 0, bits = 0;
  for (auto c : counts) total += static_cast<double>(c);
  for (auto c : counts)
    if (c) bits -= static_cast<double>(c) * std::log2(static_cast<double>(c) / total);
  return bits;
}

FrequencyTable FrequencyTable::normalize(const SymbolCounts& counts) {
  FrequencyTable t;
  double total = 0;
  for (auto c : counts) total += static_cast<double>(c);
  if (total == 0) return t;
  std::int64_t sum = 0;
  for (int s = 0; s < 256; ++s) {
    if (!counts[s]) continue;
    t.freq[s] = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(static_cast<double>(counts[s]) * kProbScale / total));
    sum += t.freq[s];
  }
  // Each step moves one unit of probability where it changes the coded size the most (costs are convex in freq).
  using Step = std::pair<double, int>;
  if (sum < kProbScale) {
    std::priority_queue<Step> gain;  // bits saved by freq + 1
    auto push = [&](int s) { gain.push({static_cast<double>(counts[s]) * std::log2((t.freq[s] + 1.0) / t.freq[s]), s}); };
    for (int s = 0; s < 256; ++s)
      if (counts[s]) push(s);
    for (; sum < kProbScale; ++sum) {
      const int s = gain.top().second;
      gain.pop();
      ++t.freq[s];
      push(s);
    }
  } else if (sum > kProbScale) {
    std::priority_queue<Step, std::vector<Step>, std::greater<>> loss;  // bits lost by freq - 1
    auto push = [&](int s) {
      if (t.freq[s] > 1) loss.push({static_cast<double>(counts[s]) * std::log2(t.freq[s] / (t.freq[s] - 1.0)), s});
    };
    for (int s = 0; s < 256; ++s)
      if (counts[s]) push(s);
    for (; sum > kProbScale; --sum) {
      const int s = loss.top().second;
      loss.pop();
      --t.freq[s];
      push(s);
    }
  }
  // The one-directional pass above can leave some symbols above and others below their optimum (raising rare
  // symbols to 1 shifts everyone's optimum). Exchange single units while that lowers the size: for a separable
  // convex cost with a fixed sum, no improving exchange left means optimal.
  for (;;) {
    int up = -1, down = -1;
    double bestGain = 0, bestLoss = 1e300;
    for (int s = 0; s < 256; ++s) {
      if (!counts[s]) continue;
      const double c = static_cast<double>(counts[s]);
      const double gain = c * std::log2((t.freq[s] + 1.0) / t.freq[s]);
      if (gain > bestGain) bestGain = gain, up = s;
      if (t.freq[s] > 1) {
        const double loss = c * std::log2(t.freq[s] / (t.freq[s] - 1.0));
        if (loss < bestLoss) bestLoss = loss, down = s;
      }
    }
    if (up < 0 || down < 0 || up == down || bestGain <= bestLoss * (1 + 1e-12)) break;
    ++t.freq[up];
    --t.freq[down];
  }
  t.rebuildCum();
  return t;
}

void FrequencyTable::rebuildCum() {
  cum[0] = 0;
  for (int s = 0; s < 256; ++s) cum[s + 1] = cum[s] + freq[s];
}

double FrequencyTable::codedBits(const SymbolCounts& counts) const {
  double bits = 0;
  for (int s = 0; s < 256; ++s)
    if (counts[s]) bits += static_cast<double>(counts[s]) * (kProbBits - std::log2(static_cast<double>(freq[s])));
  return bits;
}

int FrequencyTable::presentSymbols() const {
  int n = 0;
  for (auto f : freq) n += f != 0;
  return n;
}

void FrequencyTable::serialize(std::vector<std::byte>& out) const {
  std::byte bitmap[32] = {};
  for (int s = 0; s < 256; ++s)
    if (freq[s]) bitmap[s / 8] |= static_cast<std::byte>(1u << (s % 8));
  out.insert(out.end(), bitmap, bitmap + 32);
  for (int s = 0; s < 256; ++s)
    if (freq[s]) {
      out.push_back(static_cast<std::byte>((freq[s] - 1) & 0xFF));
      out.push_back(static_cast<std::byte>((freq[s] - 1) >> 8));
    }
}

std::size_t FrequencyTable::deserialize(std::span<const std::byte> in, FrequencyTable& t, const std::string& label) {
  if (in.size() < 32) fail(Errc::Corrupt, "{}: frequency table truncated", label);
  t = FrequencyTable{};
  std::size_t at = 32;
  std::uint32_t sum = 0;
  for (int s = 0; s < 256; ++s) {
    if (!(static_cast<unsigned>(in[s / 8]) & (1u << (s % 8)))) continue;
    if (at + 2 > in.size()) fail(Errc::Corrupt, "{}: frequency table truncated", label);
    t.freq[s] = (static_cast<std::uint32_t>(in[at]) | (static_cast<std::uint32_t>(in[at + 1]) << 8)) + 1;
    at += 2;
    sum += t.freq[s];
    if (t.freq[s] > kProbScale || sum > kProbScale)
      fail(Errc::Corrupt, "{}: frequency table sums past {}", label, kProbScale);
  }
  if (sum != 0 && sum != kProbScale)
    fail(Errc::Corrupt, "{}: frequency table sums to {} instead of {}", label, sum, kProbScale);
  t.rebuildCum();
  return at;
}

}  // namespace eq::codec
