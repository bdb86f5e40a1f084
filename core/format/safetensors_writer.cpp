#include "format/safetensors_writer.h"

#include "common/error.h"

#include <nlohmann/json.hpp>

namespace eq {

std::uint64_t TensorSpec::bytes() const {
  std::uint64_t n = dtypeSize(dtype);
  for (auto d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

SafetensorsWriter::SafetensorsWriter(const std::filesystem::path& path, std::vector<TensorSpec> tensors,
                                     const std::map<std::string, std::string>& metadata)
    : file_(path), tensors_(std::move(tensors)) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& t : tensors_) {
    const auto n = t.bytes();
    header[t.name] = {{"dtype", std::string(dtypeName(t.dtype))}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned, as HF does
  std::byte len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::byte>((text.size() >> (8 * i)) & 0xFF);
  file_.write(len);
  file_.write(std::as_bytes(std::span(text)));
}

void SafetensorsWriter::append(std::span<const std::byte> data) {
  if (next_ >= tensors_.size())
    fail(Errc::InvalidArgument, "{}: more tensor data than declared", file_.target().string());
  const auto& t = tensors_[next_];
  if (data.size() != t.bytes())
    fail(Errc::InvalidArgument, "{}: tensor \"{}\" expects {} bytes, got {}", file_.target().string(), t.name,
         t.bytes(), data.size());
  file_.write(data);
  ++next_;
}

void SafetensorsWriter::finish() {
  if (next_ != tensors_.size())
    fail(Errc::InvalidArgument, "{}: {} of {} tensors written", file_.target().string(), next_, tensors_.size());
  file_.commit();
}

}  // namespace eq
