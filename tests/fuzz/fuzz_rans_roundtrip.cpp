// The rANS coder on arbitrary symbols: the input's first two bytes choose the segment size (1 to 65,536 symbols),
// the rest are the symbols. Encoding with the normalized table of their own counts and decoding (whole stream,
// SIMD segments, scalar segments) must give them back exactly. Then one stream byte, chosen by the input, is
// flipped: decoding that must give an error or some symbols, never a crash.
#include "codec/rans.h"
#include "fuzz_util.h"

#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint32_t segmentSymbols = 1u + (data[0] | (std::uint32_t(data[1]) << 8));
  const std::span<const std::uint8_t> symbols(data + 2, size - 2);
  const auto table = eq::codec::FrequencyTable::normalize(eq::codec::countSymbols(symbols));
  const auto stream = eq::codec::ransEncode(symbols, table, segmentSymbols);

  std::vector<std::uint8_t> back(symbols.size());
  eq::codec::ransDecode(stream, back, "fuzz.rans");  // throws (a finding) if the coder loses its own stream
  eqfuzz::check(std::equal(back.begin(), back.end(), symbols.begin()), "whole-stream decode round trips");
  const auto info = eq::codec::ransParse(stream, "fuzz.rans");
  for (std::uint32_t s = 0; s < info.segments; ++s) {
    const std::uint64_t begin = std::uint64_t(s) * segmentSymbols;
    const std::size_t count = std::min<std::uint64_t>(segmentSymbols, symbols.size() - begin);
    std::vector<std::uint8_t> simd(count), scalar(count);
    eq::codec::ransDecodeSegment(info, stream, s, simd.data(), "fuzz.rans");
    eq::codec::ransDecodeSegmentScalar(info, stream, s, scalar.data(), "fuzz.rans");
    eqfuzz::check(std::equal(simd.begin(), simd.end(), symbols.begin() + begin), "SIMD segment round trips");
    eqfuzz::check(simd == scalar, "scalar segment round trips");
  }

  auto damaged = stream;
  std::size_t at = 0;
  for (std::size_t i = 0; i < size; ++i) at = at * 31 + data[i];
  damaged[at % damaged.size()] ^= std::byte{static_cast<unsigned char>(1u << (at % 8))};
  try {
    eq::codec::ransDecode(damaged, back, "fuzz.rans");
  } catch (const eq::Error&) {
  }
  return 0;
}
