// EntQuant's rANS coder for 8-bit weight codes (byte format in docs/FORMAT.md, "rANS stream").
// 32-bit states, 16-bit renormalization, 14-bit probabilities (frequency_table.h), one frequency table per tensor,
// 32 interleaved states per segment (lane l codes symbols l, l+32, ... of its segment) sharing one word stream,
// and independent segments of whole rows. So 8/16-lane SIMD or a 32-lane GPU warp decodes a segment in order, and
// segments decode in parallel. Decoding never reads or writes out of bounds; every segment ends with a state check,
// so corrupt streams are reported (Error Corrupt) instead of producing silent garbage.
#pragma once

#include "codec/frequency_table.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace eq {
class ThreadPool;
}

namespace eq::codec {

inline constexpr int kLanes = 32;
inline constexpr std::uint32_t kRansLow = 1u << 16;  // states live in [2^16, 2^32)
inline constexpr std::uint32_t kDefaultSegmentSymbols = 1u << 17;

// Whole rows, about `target` symbols per segment (at least one row).
std::uint32_t chooseSegmentSymbols(std::uint64_t rowLength, std::uint32_t target = kDefaultSegmentSymbols);

struct RansStreamInfo {
  std::uint64_t symbols = 0;
  std::uint32_t segmentSymbols = 0;
  std::uint32_t segments = 0;
  FrequencyTable table;
  std::size_t dataOffset = 0;                 // where segment data starts in the stream
  std::span<const std::byte> segmentEnds;     // u32 little-endian, byte offsets relative to dataOffset
  std::uint32_t segmentEnd(std::uint32_t i) const;
  std::uint32_t segmentBegin(std::uint32_t i) const { return i == 0 ? 0 : segmentEnd(i - 1); }
};

// Encodes `symbols` with `table` (which must give every present symbol a frequency). Segments in parallel when
// `pool` is given.
std::vector<std::byte> ransEncode(std::span<const std::uint8_t> symbols, const FrequencyTable& table,
                                  std::uint32_t segmentSymbols, ThreadPool* pool = nullptr);

// Validates the stream header, table and segment index (not the segment contents). Throws Error(Corrupt).
RansStreamInfo ransParse(std::span<const std::byte> stream, const std::string& label);

// ransParse, then Error(Corrupt) "<label>: rANS stream holds N symbols, expected M" unless the stream holds
// `symbols`: what callers check before allocating for the decoded symbols.
RansStreamInfo ransParseExpecting(std::span<const std::byte> stream, std::uint64_t symbols, const std::string& label);

// Decodes into `out` (whose size must equal the stream's symbol count). Throws Error(Corrupt) naming `label`.
void ransDecode(std::span<const std::byte> stream, std::span<std::uint8_t> out, const std::string& label,
                ThreadPool* pool = nullptr);

// The same, one segment at a time (the unit a GPU warp or a worker takes).
void ransDecodeSegment(const RansStreamInfo& info, std::span<const std::byte> stream, std::uint32_t segment,
                       std::uint8_t* out, const std::string& label);

// Slow, obviously-correct decoder used by tests to check the SIMD one.
void ransDecodeSegmentScalar(const RansStreamInfo& info, std::span<const std::byte> stream, std::uint32_t segment,
                             std::uint8_t* out, const std::string& label);

}  // namespace eq::codec
