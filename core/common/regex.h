// A compiled PCRE2 regular expression (UTF-8, Unicode properties for \\p{L}, \\s, ...; Perl syntax; JIT when available). Used for --layer-bits rules now and the tokenizer's
// pre-tokenization patterns later; std::regex is slower and trips GCC 12 warnings under the sanitizers.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace eq {

class Regex {
 public:
  // Throws Error(InvalidArgument) with PCRE2's message and the offset of the problem.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // True when the pattern matches anywhere in `text`.
  bool search(std::string_view text) const;
  // Every non-overlapping match, left to right, as [begin, end) byte offsets (an empty match advances one
  // character).
  std::vector<std::pair<std::size_t, std::size_t>> findAll(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  std::string pattern_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eq
