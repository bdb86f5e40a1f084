// parseSafetensors on arbitrary bytes: an error, or a header whose tensors all lie inside the data section, in
// order, without overlap, each with shape x dtype size equal to its byte range.
#include "format/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto header = eq::parseSafetensors(eqfuzz::bytes(data, size), "fuzz.safetensors");
    eqfuzz::check(header.dataOffset() <= size, "data offset inside the file");
    std::uint64_t last = 0;
    for (const auto& t : header.tensors) {
      eqfuzz::check(t.begin <= t.end && t.begin >= last, "ranges ordered and disjoint");
      eqfuzz::check(t.end <= size - header.dataOffset(), "range inside the data section");
      eqfuzz::check(t.numel * eq::dtypeSize(t.dtype) == t.bytes(), "shape x dtype size equals the range");
      last = t.end;
    }
  } catch (const eq::Error&) {
  }
  return 0;
}
