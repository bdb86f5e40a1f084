// Model archives (.zip, .tar, .tar.gz, .tar.xz, .tar.zst, ...) through libarchive. Entries are checked before
// anything is written: no absolute paths, no "..", no links or devices, so nothing escapes the target folder.
#pragma once

#include "common/progress.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>

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

// How many bytes an extraction into `dest` may write: the space free there less a reserve for the rest of the
// system (a twentieth of it, at most 1 GiB), so that a decompression bomb or a model too large for the folder stops
// with an error before the disk (or a RAM-backed /tmp) is full.
std::uint64_t extractionBudget(const std::filesystem::path& dest);

// Extracts `archive` into the existing, empty folder `dest`. `keepGoing` (optional) is asked between entries and
// blocks; returning false cancels with Error(Cancelled). `progress` (optional): Phase::Extract, the archive's bytes
// read so far of its size, and the entry being unpacked, at each entry and every 4 MiB. At most `maxBytes` (default: extractionBudget(dest)) are
// written: an entry whose declared size would pass it is refused before any of it is written, and one that grows
// past it (a declared size that lies, or none) is refused when it does, with Error(NoSpace). Throws
// Error(UnsafeArchive / Unsupported / Corrupt / Io / NoSpace) naming the archive and the entry; what was written
// stays in `dest` for its owner (a TempDir) to remove.
void extractArchive(const std::filesystem::path& archive, const std::filesystem::path& dest,
                    const std::function<bool()>& keepGoing = {}, std::optional<std::uint64_t> maxBytes = {},
                    const ProgressFn& progress = {});

}  // namespace eq
