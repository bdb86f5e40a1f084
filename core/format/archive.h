// Model archives (.zip, .tar, .tar.gz, .tar.xz, .tar.zst, ...) through libarchive. Entries are checked before
// anything is written: no absolute paths, no "..", no links or devices, so nothing escapes the target folder.
#pragma once

#include <filesystem>
#include <functional>

namespace eq {

// True when the file name has an archive extension we read.
bool isArchivePath(const std::filesystem::path& path);

// A temporary folder that is removed (recursively) when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "entquant");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Extracts `archive` into the existing, empty folder `dest`. `keepGoing` (optional) is asked between entries and
// blocks; returning false cancels with Error(Cancelled). Throws Error(UnsafeArchive / Unsupported / Io / NoSpace)
// naming the archive and the entry.
void extractArchive(const std::filesystem::path& archive, const std::filesystem::path& dest,
                    const std::function<bool()>& keepGoing = {});

}  // namespace eq
