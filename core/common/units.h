// Human-readable numbers for CLI and GUI output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace eq {

std::string formatBytes(std::uint64_t bytes);     // "1.5 GiB", "512 B"
std::string formatCount(std::uint64_t n);         // "1,234,567"
std::string formatDuration(double seconds);       // "1 min 12 s", "0.35 s"

// The machine's physical memory in bytes (8 GiB where the system does not say); memory budgets start from it.
std::uint64_t physicalMemoryBytes();
// Memory a new allocation can take now without swapping (Linux: MemAvailable; elsewhere the physical memory).
std::uint64_t availableMemoryBytes();

// Before allocating what a file declares: throws Error(Unsupported) "<what>: needs <bytes> of memory, more than this
// machine has (<physical>)" when `bytes` exceeds the physical memory, instead of letting a corrupt or hostile size
// (a few bytes of rANS stream may declare billions of symbols) exhaust it.
void requireMemory(std::uint64_t bytes, std::string_view what);

}  // namespace eq
