#include "format/archive.h"

#include "common/error.h"
#include "common/units.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>

namespace eq {
namespace fs = std::filesystem;

bool isArchivePath(const fs::path& path) {
  const std::string name = path.filename().string();
  static constexpr std::array<std::string_view, 11> kExt{".zip", ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz",
                                                          ".tar.zst", ".tzst", ".tar.bz2", ".tbz2", ".7z"};
  for (auto ext : kExt)
    if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) return true;
  return false;
}

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = (fs::path(tmp && *tmp ? tmp : "/tmp") / (prefix + "-XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) failErrno(errno, "creating a temporary folder");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

namespace {

struct ReaderDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// An entry path is safe when it is relative and no component is "..".
bool safeEntryPath(const std::string& name) {
  if (name.empty() || name.front() == '/') return false;
  const fs::path p(name);
  for (const auto& part : p)
    if (part == "..") return false;
  return !p.has_root_name() && !p.has_root_directory();
}

void writeAll(int fd, const void* buf, std::size_t n, const fs::path& where) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      failErrno(errno, where.string());
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// libarchive's message for the last error; it has none for some failures (a null pointer, which fmt refuses).
// Some of its messages end in a newline, which would break ours.
std::string errorText(struct archive* a) {
  const char* e = archive_error_string(a);
  std::string text = e ? e : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? "no details from libarchive" : text;
}

}  // namespace

std::uint64_t extractionBudget(const fs::path& dest) {
  std::error_code ec;
  const auto info = fs::space(dest, ec);
  if (ec) fail(Errc::Io, "{}: cannot tell the free space: {}", dest.string(), ec.message());
  constexpr std::uint64_t kMaxReserve = std::uint64_t{1} << 30;
  return info.available - std::min<std::uint64_t>(info.available / 20, kMaxReserve);
}

void extractArchive(const fs::path& archivePath, const fs::path& dest, const std::function<bool()>& keepGoing,
                    std::optional<std::uint64_t> maxBytes, const ProgressFn& progressFn) {
  const std::string label = archivePath.string();
  const std::uint64_t budget = maxBytes ? *maxBytes : extractionBudget(dest);
  std::uint64_t written = 0;  // by all entries so far
  const auto overBudget = [&](const std::string& entry, std::string_view how) {
    fail(Errc::NoSpace, "{}: entry \"{}\" {}: more than the {} available for unpacking in {} (set TMPDIR to a folder "
         "with more free space, or unpack the archive yourself and open the folder)", label, entry, how,
         formatBytes(budget), dest.string());
  };
  std::unique_ptr<struct archive, ReaderDeleter> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_all(a.get());
  if (archive_read_open_filename(a.get(), archivePath.c_str(), 1 << 16) != ARCHIVE_OK) {
    std::error_code ec;
    if (!fs::exists(archivePath, ec)) fail(Errc::NotFound, "{}: no such file", label);
    fail(Errc::Unsupported, "{}: cannot be read as an archive ({})", label, errorText(a.get()));
  }
  auto stop = [&] {
    if (keepGoing && !keepGoing()) fail(Errc::Cancelled, "{}: extraction cancelled", label);
  };
  std::error_code sizeError;
  const std::uint64_t archiveBytes = fs::file_size(archivePath, sizeError);
  PhaseProgress progress(progressFn, Phase::Extract, Unit::Bytes, 1, sizeError ? 0 : archiveBytes);
  std::uint64_t reported = 0;
  auto report = [&](const std::string& entryName, bool force) {
    const auto read = static_cast<std::uint64_t>(std::max<la_int64_t>(archive_filter_bytes(a.get(), -1), 0));
    if (!progress.enabled() || (!force && read < reported + (4u << 20))) return;
    reported = read;
    progress.report(0, std::min(read, archiveBytes), entryName);
  };
  struct archive_entry* entry = nullptr;
  std::array<char, 1 << 16> buf;
  for (;;) {
    stop();
    const int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN)
      fail(Errc::Corrupt, "{}: damaged archive ({})", label, errorText(a.get()));
    const char* rawName = archive_entry_pathname(entry);
    const std::string name = rawName ? rawName : "";
    if (!safeEntryPath(name))
      fail(Errc::UnsafeArchive, "{}: entry \"{}\" would be written outside the model folder", label, name);
    const auto type = archive_entry_filetype(entry);
    if (archive_entry_hardlink(entry) || type == AE_IFLNK)
      fail(Errc::UnsafeArchive, "{}: entry \"{}\" is a link; model archives may hold only files and folders", label,
           name);
    const fs::path target = dest / fs::path(name).lexically_normal();
    std::error_code ec;
    if (type == AE_IFDIR) {
      fs::create_directories(target, ec);
      if (ec) fail(Errc::Io, "{}: cannot create {}: {}", label, target.string(), ec.message());
      continue;
    }
    if (type != AE_IFREG)
      fail(Errc::UnsafeArchive, "{}: entry \"{}\" is not a regular file or folder", label, name);
    report(name, true);
    if (archive_entry_size_is_set(entry)) {
      const auto declared = static_cast<std::uint64_t>(std::max<la_int64_t>(archive_entry_size(entry), 0));
      if (declared > budget - written)
        overBudget(name, fmt::format("is {}{}", formatBytes(declared),
                                     written ? fmt::format(", {} with the entries before it",
                                                           formatBytes(written + declared)) : ""));
    }
    fs::create_directories(target.parent_path(), ec);
    if (ec) fail(Errc::Io, "{}: cannot create {}: {}", label, target.parent_path().string(), ec.message());
    // O_EXCL|O_NOFOLLOW: a duplicate entry or a pre-existing link at the target is refused, never followed.
    const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) fail(Errc::UnsafeArchive, "{}: entry \"{}\" appears twice", label, name);
      failErrno(errno, target.string());
    }
    try {
      for (;;) {
        const la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n == 0) break;
        if (n < 0) fail(Errc::Corrupt, "{}: entry \"{}\": {}", label, name, errorText(a.get()));
        if (static_cast<std::uint64_t>(n) > budget - written)
          overBudget(name, fmt::format("makes the unpacked total {}", formatBytes(written + n)));
        written += static_cast<std::uint64_t>(n);
        writeAll(fd, buf.data(), static_cast<std::size_t>(n), target);
        stop();
        report(name, false);
      }
    } catch (...) {
      ::close(fd);
      throw;
    }
    if (::close(fd) != 0) failErrno(errno, target.string());
  }
  if (progress.enabled()) progress.report(1, archiveBytes, {}, true);
}

}  // namespace eq
