// HuggingFace tokenizer.json, BPE models, step by step as HF's `tokenizers`: added tokens split out first (leftmost-
// longest; those marked normalized in the normalized text; single_word, lstrip and rstrip as HF applies them),
// normalizers (NFC, NFKC, NFD, NFKD, Lowercase, Replace, Prepend, Sequence), pre-tokenizers (Split by the file's own
// regex through PCRE2 with every behavior and invert, ByteLevel, Metaspace with its prepend schemes, Digits,
// Sequence), BPE with merges in either spelling, ignore_merges and byte_fallback, post-processors
// (TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence) and decoders (ByteLevel, Metaspace,
// ByteFallback, Fuse, Strip, Replace, Sequence; none: tokens joined by spaces). A component this code does not know
// is refused when the file is read. Checked against HF `tokenizers` on tokenizers of several styles and variants of
// them (tests/data/tokenizers).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace eq::text {

// Token ids index a table: a tokenizer.json with a larger id is refused (the largest vocabularies have a few
// hundred thousand tokens).
inline constexpr std::int32_t kMaxTokenId = (1 << 24) - 1;

class Tokenizer {
 public:
  // Throws Error naming the file: InvalidJson, or Unsupported for a model / component this build does not know.
  static Tokenizer fromFile(const std::filesystem::path& path);
  static Tokenizer fromJson(const nlohmann::json& json, const std::string& label);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // addSpecialTokens applies the post-processor (e.g. a BOS token). Throws Error(InvalidArgument) for invalid UTF-8.
  std::vector<std::int32_t> encode(const std::string& text, bool addSpecialTokens = true) const;
  std::string decode(const std::vector<std::int32_t>& ids, bool skipSpecialTokens = false) const;
  std::int64_t vocabSize() const;
  std::int32_t tokenId(const std::string& token) const;  // -1 when absent
  std::string token(std::int32_t id) const;              // "" when absent

 private:
  struct Impl;
  Tokenizer();
  static Tokenizer build(const nlohmann::json& json, const std::string& label);
  std::vector<std::int32_t> encodeValid(const std::string& text, bool addSpecialTokens) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eq::text
