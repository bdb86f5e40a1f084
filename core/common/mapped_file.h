// Read-only memory mapping of a whole file. Pages are loaded lazily, so mapping a multi-GB shard is instant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace eq {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws Error(NotFound / Io) naming the path.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(data_), size_}; }
  std::size_t size() const { return size_; }
  // Drops the pages of [offset, offset + bytes) from this process (they stay in the page cache and are read again
  // on the next access), so streaming through a large model keeps the resident set small.
  void release(std::size_t offset, std::size_t bytes) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  void reset() noexcept;
  std::filesystem::path path_;
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace eq
