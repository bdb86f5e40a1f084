#include "pipeline/eqz_tools.h"

#include "model/tensor_role.h"

#include "quant/eqz_decode.h"

#include "common/error.h"
#include "common/thread_pool.h"
#include "common/units.h"
#include "codec/rans.h"
#include "format/archive.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "quant/baseline.h"
#include "quant/tensor_quantizer.h"

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace eq {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

void writeFileAll(const fs::path& p, std::span<const std::byte> data) {
  AtomicFile f(p);
  f.write(data);
  f.commit();
}

}  // namespace

VerifyReport verifyEqz(const EqzFile& file, ThreadPool& pool, const KeepGoingFn& keepGoing,
                       const ProgressFn& progressFn) {
  const auto start = Clock::now();
  VerifyReport r;
  auto check = [&](const EqzSection& s, const std::string& what) {
    if (keepGoing && !keepGoing()) fail(Errc::Cancelled, "verification cancelled");
    if (xxh3(file.bytes(s)) != s.xxh3)
      fail(Errc::Corrupt, "{}: {} fails its checksum; the file is corrupt", file.path().string(), what);
    ++r.sections;
    r.bytesChecked += s.bytes;
  };
  for (const auto& t : file.tensors())
    for (const auto& [key, s] : t.sections) check(s, fmt::format("section \"{}\" of tensor \"{}\"", key, t.name));
  for (const auto& [name, s] : file.files()) check(s, fmt::format("embedded file \"{}\"", name));
  std::uint64_t compressed = 0, bytesTotal = 0, bytesDone = 0;
  for (const auto& t : file.tensors())
    if (t.encoding != Encoding::Raw) ++compressed, bytesTotal += t.storedBytes();
  PhaseProgress progress(progressFn, Phase::Verify, Unit::Tensors, compressed, bytesTotal);
  for (const auto& t : file.tensors()) {
    if (t.encoding == Encoding::Raw) continue;
    if (keepGoing && !keepGoing()) fail(Errc::Cancelled, "verification cancelled");
    progress.report(r.tensorsDecoded, bytesDone, t.name);
    DType dt;
    decodeTensor(file, t, &pool, dt);
    ++r.tensorsDecoded;
    bytesDone += t.storedBytes();
    progress.report(r.tensorsDecoded, bytesDone, t.name, true);
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

std::vector<TensorReport> eqzTensorReports(const EqzFile& file) {
  std::vector<TensorReport> out;
  for (const EqzTensor& t : file.tensors()) {
    TensorReport r;
    r.name = t.name;
    r.shape = t.shape;
    r.dtype = t.dtype;
    r.role = classifyTensor(t.name, t.shape, t.dtype).role;
    r.encoding = t.encoding;
    r.numel = t.numel();
    r.storedBytes = t.storedBytes();
    r.effectiveBits = r.numel ? 8.0 * static_cast<double>(r.storedBytes) / static_cast<double>(r.numel) : 0;
    auto number = [&](const char* key) {
      return t.stats.is_object() && t.stats.contains(key) && t.stats[key].is_number() ? t.stats[key].get<double>() : 0.0;
    };
    r.entropyBits = number("entropy_bpw");
    r.lambda = number("lambda");
    r.distinctSymbols = static_cast<int>(number("distinct_symbols"));
    r.relL1 = number("rel_l1");
    r.relL2 = number("rel_l2");
    r.sensitivity = number("sensitivity");
    out.push_back(std::move(r));
  }
  return out;
}

DecompressReport decompressEqz(const EqzFile& file, const fs::path& dirArg, ThreadPool& pool,
                               const KeepGoingFn& keepGoing, const ProgressFn& progressFn) {
  const auto start = Clock::now();
  const fs::path dir = dirArg.filename().empty() ? dirArg.parent_path() : dirArg;  // "out/" -> "out"
  std::error_code ec;
  if (fs::exists(dir, ec) && !(fs::is_directory(dir, ec) && fs::is_empty(dir, ec)))
    fail(Errc::InvalidArgument, "{}: exists and is not an empty folder", dir.string());
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  std::string pattern = siblingTempPattern(dir);
  if (!::mkdtemp(pattern.data())) failErrno(errno, parent.string());
  const fs::path temp = pattern;
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      if (!p.empty()) fs::remove_all(p, e);
    }
  } cleanup{temp};

  DecompressReport r;
  std::vector<TensorSpec> specs;
  for (const auto& t : file.tensors())
    specs.push_back({t.name, t.encoding == Encoding::Raw ? t.dtype : DType::BF16, t.shape});
  {
    SafetensorsWriter w(temp / "model.safetensors", specs, {{"format", "pt"}, {"entquant", "decompressed"}});
    std::uint64_t bytesTotal = 0, bytesDone = 0;
    for (const auto& t : file.tensors()) bytesTotal += t.storedBytes();
    PhaseProgress progress(progressFn, Phase::Decompress, Unit::Tensors, file.tensors().size(), bytesTotal);
    for (const auto& t : file.tensors()) {
      if (keepGoing && !keepGoing()) fail(Errc::Cancelled, "decompression cancelled");
      progress.report(r.tensors, bytesDone, t.name);
      DType dt;
      const auto bytes = decodeTensor(file, t, &pool, dt);
      w.append(bytes);
      r.bytes += bytes.size();
      ++r.tensors;
      bytesDone += t.storedBytes();
      progress.report(r.tensors, bytesDone, t.name, true);
    }
    w.finish();
  }
  for (const auto& [name, s] : file.files()) {
    const fs::path p(name);
    if (p.has_parent_path() || name == "model.safetensors" || name.empty() || name[0] == '.')
      fail(Errc::Corrupt, "{}: embedded file name \"{}\" is not a plain file name", file.path().string(), name);
    if (xxh3(file.bytes(s)) != s.xxh3)
      fail(Errc::Corrupt, "{}: embedded file \"{}\" fails its checksum; the file is corrupt", file.path().string(), name);
    writeFileAll(temp / p, file.bytes(s));
    ++r.files;
  }
  fs::remove(dir, ec);  // an empty folder, if it was there
  fs::rename(temp, dir, ec);
  if (ec) fail(Errc::Io, "{}: cannot move the decompressed folder into place: {}", dir.string(), ec.message());
  cleanup.p.clear();
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

}  // namespace eq
