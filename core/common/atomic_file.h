// Writes a file all-or-nothing: data goes to a temporary file beside the target, which is fsynced and renamed
// over the target on commit(). Destroying an uncommitted AtomicFile (error, cancel) removes the temporary file.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>

namespace eq {

// "DIR/.NAME.tmp-XXXXXX" beside `target`: a mkstemp/mkdtemp pattern on the same filesystem, so rename is atomic.
std::string siblingTempPattern(const std::filesystem::path& target);

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const std::byte> data);
  // Overwrites bytes already written (a header completed at the end); does not move the append position.
  void writeAt(std::uint64_t offset, std::span<const std::byte> data);
  void commit();
  std::uint64_t bytesWritten() const { return written_; }
  const std::filesystem::path& target() const { return target_; }

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
  std::uint64_t written_ = 0;
};

}  // namespace eq
