// Process-wide allocator settings for the executables (the library never changes them itself).
#pragma once

namespace eq {

// glibc returns freed blocks of more than 128 KiB to the system (mmap'd, or trimmed off the heap's top) and its
// adaptive threshold follows the largest block freed so far; a model run allocates and frees buffers of a few MB per
// block and token window, so each pass page-faulted fresh zero pages in again (about a tenth of a calibration's
// time on the demo model: docs/BENCHMARKS.md). This keeps blocks up to 32 MiB on the heap and up to 256 MiB of free heap top mapped. Larger buffers
// (weights, hidden states of many texts) are still mapped and returned on their own. No effect elsewhere.
void keepFreedBuffers();

}  // namespace eq
