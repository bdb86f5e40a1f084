// The symbol model of one rANS stream: frequencies of the 256 byte symbols normalized to 2^kProbBits, with every
// present symbol >= 1. 14 bits: FP8 codes at 2-3 bits have dozens of symbols rarer than 1/4096, and at 12 bits
// their minimum frequency alone costs 0.6-0.9 % of the stream (0.13-0.18 % at 14 bits, measured). Normalization minimizes the coded size sum(count * log2(2^P / freq)) exactly (greedy on
// the convex per-symbol costs), which matters for the peaked distributions of low-bit codes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace eq::codec {

inline constexpr int kProbBits = 14;
inline constexpr std::uint32_t kProbScale = 1u << kProbBits;

using SymbolCounts = std::array<std::uint64_t, 256>;

SymbolCounts countSymbols(std::span<const std::uint8_t> symbols);
double shannonBits(const SymbolCounts& counts);  // sum count * -log2(count / total)

struct FrequencyTable {
  std::array<std::uint32_t, 256> freq{};  // sums to kProbScale (or all zero for an empty stream)
  std::array<std::uint32_t, 257> cum{};   // cum[s] = sum of freq below s

  static FrequencyTable normalize(const SymbolCounts& counts);
  // Bits the counts cost under this table (what rANS will spend, without state and renorm overhead).
  double codedBits(const SymbolCounts& counts) const;
  int presentSymbols() const;

  // Stored form: a 32-byte bitmap of present symbols, then one u16 (freq - 1) per present symbol.
  std::size_t serializedSize() const { return 32 + 2 * static_cast<std::size_t>(presentSymbols()); }
  void serialize(std::vector<std::byte>& out) const;
  // Reads and validates a table at the start of `in`; returns the bytes consumed. Throws Error(Corrupt).
  static std::size_t deserialize(std::span<const std::byte> in, FrequencyTable& table, const std::string& label);

 private:
  void rebuildCum();
};

}  // namespace eq::codec
