// Shared by the libFuzzer targets (tests/fuzz/README.md). A target feeds its input to one reader of untrusted data
// and lets only eq::Error pass: any other exception, a sanitizer report, a timeout or an allocation beyond
// libFuzzer's -rss_limit_mb / -malloc_limit_mb is a finding. check() turns a broken invariant into a crash.
#pragma once

#include "common/error.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <unistd.h>

namespace eqfuzz {

inline std::span<const std::byte> bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

// The input as a file named `name` in a folder of this process (in /dev/shm where it exists), for readers that
// take a path. Rewritten for every input.
inline std::filesystem::path asFile(const std::uint8_t* data, std::size_t size, const std::string& name) {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    auto d = base / ("entquant-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  auto path = dir / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return path;
}

}  // namespace eqfuzz
