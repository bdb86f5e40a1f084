#include "common/atomic_file.h"

#include "common/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace eq {

std::string siblingTempPattern(const std::filesystem::path& target) {
  const auto dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::string name(".");
  name += target.filename().string();
  name += ".tmp-XXXXXX";
  return (dir / name).string();
}

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  std::string pattern = siblingTempPattern(target_);
  fd_ = ::mkstemp(pattern.data());
  if (fd_ < 0) failErrno(errno, target_.string());
  temp_ = pattern;
  ::fchmod(fd_, 0644);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::write(std::span<const std::byte> data) {
  const std::byte* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      failErrno(errno, target_.string());
    }
    p += n;
    left -= static_cast<std::size_t>(n);
    written_ += static_cast<std::uint64_t>(n);
  }
}

void AtomicFile::writeAt(std::uint64_t offset, std::span<const std::byte> data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      failErrno(errno, target_.string());
    }
    done += static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) failErrno(errno, target_.string());
  if (::close(fd_) != 0) {
    fd_ = -1;
    failErrno(errno, target_.string());
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0) failErrno(errno, target_.string());
  temp_.clear();
  const auto dir = target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {  // make the rename durable; failure here cannot lose data already renamed
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace eq
