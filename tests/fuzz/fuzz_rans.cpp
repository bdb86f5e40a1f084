// ransParse + ransDecode on arbitrary bytes, and a differential check: the SIMD segment decoder and the scalar
// reference decoder must agree on every segment, either the same symbols or both an error.
#include "codec/rans.h"
#include "fuzz_util.h"

#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto stream = eqfuzz::bytes(data, size);
  eq::codec::RansStreamInfo info;
  try {
    info = eq::codec::ransParse(stream, "fuzz.rans");
  } catch (const eq::Error&) {
    return 0;
  }
  // A valid stream may hold many symbols in few bytes (a one-symbol table codes each in zero bits); decode only
  // what fits a fuzzing run. The limits of real files are the .eqz reader's business (fuzz_eqz).
  if (info.symbols > (1u << 22)) return 0;
  std::vector<std::uint8_t> all(info.symbols);
  bool allOk = true;
  try {
    eq::codec::ransDecode(stream, all, "fuzz.rans");
  } catch (const eq::Error&) {
    allOk = false;
  }
  bool segmentsOk = true;
  for (std::uint32_t s = 0; s < info.segments; ++s) {
    const std::uint64_t begin = std::uint64_t(s) * info.segmentSymbols;
    const std::uint64_t count = std::min<std::uint64_t>(info.segmentSymbols, info.symbols - begin);
    std::vector<std::uint8_t> simd(count), scalar(count);
    bool simdOk = true, scalarOk = true;
    try {
      eq::codec::ransDecodeSegment(info, stream, s, simd.data(), "fuzz.rans");
    } catch (const eq::Error&) {
      simdOk = false;
    }
    try {
      eq::codec::ransDecodeSegmentScalar(info, stream, s, scalar.data(), "fuzz.rans");
    } catch (const eq::Error&) {
      scalarOk = false;
    }
    eqfuzz::check(simdOk == scalarOk, "SIMD and scalar decoders agree on whether a segment is valid");
    if (simdOk) {
      eqfuzz::check(simd == scalar, "SIMD and scalar decoders give the same symbols");
      if (allOk) eqfuzz::check(std::equal(simd.begin(), simd.end(), all.begin() + begin), "whole-stream decode agrees");
    }
    segmentsOk = segmentsOk && simdOk;
  }
  eqfuzz::check(allOk == segmentsOk, "the whole stream is valid exactly when every segment is");
  return 0;
}
