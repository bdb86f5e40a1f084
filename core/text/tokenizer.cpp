#include "text/tokenizer.h"

#include "common/error.h"
#include "common/json.h"
#include "common/regex.h"
#include "format/model_config.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace eq::text {
namespace {

using nlohmann::json;

std::string utf8(std::uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// The UTF-8 characters of s (s must be valid UTF-8).
std::vector<std::string> chars(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

void checkUtf8(const std::string& s) {
  utf8proc_int32_t cp;
  for (std::size_t i = 0; i < s.size();) {
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                    static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) fail(Errc::InvalidArgument, "text is not valid UTF-8 (at byte {})", i);
    i += static_cast<std::size_t>(n);
  }
}

// GPT-2's reversible map from bytes to printable characters.
struct ByteLevelTables {
  std::array<std::string, 256> toChar;
  std::unordered_map<std::string, std::uint8_t> toByte;
  ByteLevelTables() {
    std::array<bool, 256> direct{};
    for (int b = '!'; b <= '~'; ++b) direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      toChar[b] = utf8(direct[b] ? static_cast<std::uint32_t>(b) : static_cast<std::uint32_t>(256 + next++));
      toByte[toChar[b]] = static_cast<std::uint8_t>(b);
    }
  }
};
const ByteLevelTables& byteLevel() {
  static const ByteLevelTables t;
  return t;
}

const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// Bytes to text as Rust's String::from_utf8_lossy does (what HF decoders return): each maximal invalid subpart
// becomes one U+FFFD.
std::string lossyUtf8(const std::string& b) {
  std::string out;
  const std::size_t n = b.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = static_cast<unsigned char>(b[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    std::size_t k = len ? 1 : 0;
    while (k < len && i + k < n) {
      const unsigned char d = static_cast<unsigned char>(b[i + k]);
      const bool ok = k == 1 ? (d >= lo && d <= hi) : (d >= 0x80 && d <= 0xBF);
      if (!ok) break;
      ++k;
    }
    if (len && k == len) out.append(b, i, len);
    else out += "\uFFFD";
    i += std::max<std::size_t>(k, 1);
  }
  return out;
}

// A token id from tokenizer.json: an integer that fits 32 bits. A float or a larger number is refused, not cast
// (casting a float beyond the range is undefined behaviour).
std::int32_t tokenIdFrom(const json& v, const std::string& label) {
  const bool fits = v.is_number_unsigned() ? v.get<std::uint64_t>() <= 0x7FFFFFFFu
                    : v.is_number_integer() ? v.get<std::int64_t>() >= INT32_MIN && v.get<std::int64_t>() <= INT32_MAX
                                            : false;
  if (!fits) fail(Errc::InvalidJson, "{}: token id {} is not a 32-bit integer", label, v.dump());
  return static_cast<std::int32_t>(v.get<std::int64_t>());
}

std::string patternString(const json& p, const std::string& label) {
  if (p.contains("String")) return p.at("String").get<std::string>();
  fail(Errc::Unsupported, "{}: only string patterns are supported here", label);
}

// The code point starting at s[i] and its length in bytes (s valid UTF-8).
std::pair<utf8proc_int32_t, std::size_t> codePoint(std::string_view s, std::size_t i) {
  utf8proc_int32_t cp = 0;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                  static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
  return {cp, n > 0 ? static_cast<std::size_t>(n) : 1};
}

// The start of the last code point of s[0, end).
std::size_t previousCodePoint(std::string_view s, std::size_t end) {
  std::size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// Rust regex's \s (Unicode White_Space), which HF's added-token stripping uses.
bool isSpace(utf8proc_int32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Rust regex's \w: alphabetic, marks, decimal digits, connector punctuation, joiners (single_word's word test).
bool isWordChar(utf8proc_int32_t c) {
  if (c == 0x200C || c == 0x200D) return true;
  switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// Rust's char::is_numeric (the Digits pre-tokenizer).
bool isNumeric(utf8proc_int32_t c) {
  const auto cat = utf8proc_category(c);
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

// A piece of text on its way through pre-tokenization; atStart: it begins at byte 0 of the text being encoded
// (Metaspace's prepend_scheme "first" asks).
struct Piece {
  std::string text;
  bool atStart = false;
};

// A split of a piece: [b, e) and whether the pattern matched it (HF's `find_matches` covers the whole piece).
struct Span {
  std::size_t b, e;
  bool match;
};

// HF's SplitDelimiterBehavior applied to the spans of one piece; empty results are dropped as HF drops them.
void splitPiece(const Piece& piece, std::vector<Span> spans, const std::string& behavior, std::vector<Piece>& out,
                const std::string& label) {
  std::vector<Span> kept;
  bool previous = false;
  if (behavior == "Removed") {
    for (const auto& s : spans)
      if (!s.match) kept.push_back(s);
  } else if (behavior == "Isolated") {
    kept = std::move(spans);
  } else if (behavior == "MergedWithPrevious") {
    for (const auto& s : spans) {
      if (s.match && !previous && !kept.empty()) kept.back().e = s.e;
      else kept.push_back(s);
      previous = s.match;
    }
  } else if (behavior == "MergedWithNext") {
    for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
      if (it->match && !previous && !kept.empty()) kept.back().b = it->b;
      else kept.push_back(*it);
      previous = it->match;
    }
    std::reverse(kept.begin(), kept.end());
  } else if (behavior == "Contiguous") {
    for (const auto& s : spans) {
      if (s.match == previous && !kept.empty()) kept.back().e = s.e;
      else kept.push_back(s);
      previous = s.match;
    }
  } else {
    fail(Errc::Unsupported, "{}: Split behavior \"{}\" is not supported", label, behavior);
  }
  for (const auto& s : kept)
    if (s.e > s.b) out.push_back({piece.text.substr(s.b, s.e - s.b), piece.atStart && s.b == 0});
}

// The spans of a regex's matches and the gaps between them.
std::vector<Span> regexSpans(const Regex& re, const std::string& text, bool invert) {
  std::vector<Span> spans;
  std::size_t last = 0;
  for (const auto& [b, e] : re.findAll(text)) {
    if (b > last) spans.push_back({last, b, invert});
    spans.push_back({b, e, !invert});
    last = e;
  }
  if (last < text.size()) spans.push_back({last, text.size(), invert});
  return spans;
}

// The spans of single characters passing `pred` and the runs between them (HF's char-predicate patterns).
template <class Pred>
std::vector<Span> charSpans(const std::string& text, Pred pred) {
  std::vector<Span> spans;
  std::size_t last = 0;
  for (std::size_t i = 0; i < text.size();) {
    const auto [cp, n] = codePoint(text, i);
    if (pred(cp)) {
      if (i > last) spans.push_back({last, i, false});
      spans.push_back({i, i + n, true});
      last = i + n;
    }
    i += n;
  }
  if (last < text.size()) spans.push_back({last, text.size(), false});
  return spans;
}

}  // namespace

struct Tokenizer::Impl {
  std::string label;
  std::unordered_map<std::string, std::int32_t> vocab;
  std::vector<std::string> idToToken;
  std::unordered_map<std::string, int> mergeRank;  // "left\x01right" -> rank
  bool ignoreMerges = false, byteFallback = false, fuseUnk = false;
  std::optional<std::int32_t> unk;
  struct Added {
    std::string content;
    std::string pattern;  // what is searched for: the content, or for a normalized token its normalized form
    std::int32_t id;
    bool special, singleWord, lstrip, rstrip, normalized;
  };
  std::vector<Added> added;
  // The added tokens by the first byte of their pattern, longest first: [0] those matched in the raw text, [1] the
  // normalized ones, matched in the normalized text.
  std::array<std::array<std::vector<const Added*>, 256>, 2> addedByByte;
  std::unordered_set<std::int32_t> specialIds;
  json normalizer, preTokenizer, decoder, postProcessor;
  std::vector<std::unique_ptr<Regex>> regexes;  // compiled Split patterns, in pre-tokenizer order

  std::string normalize(const std::string& s, const json& n) const {
    if (n.is_null()) return s;
    const std::string type = n.value("type", "");
    if (type == "Sequence") {
      std::string r = s;
      for (const auto& sub : n.at("normalizers")) r = normalize(r, sub);
      return r;
    }
    if (type == "NFC" || type == "NFKC" || type == "NFD" || type == "NFKD") {
      // utf8proc_NFC() and its kin stop at the first NUL; utf8proc_map with the length normalizes all of it.
      const int form = type == "NFC"    ? UTF8PROC_STABLE | UTF8PROC_COMPOSE
                       : type == "NFKC" ? UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT
                       : type == "NFD"  ? UTF8PROC_STABLE | UTF8PROC_DECOMPOSE
                                        : UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
      utf8proc_uint8_t* out = nullptr;
      const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                              static_cast<utf8proc_ssize_t>(s.size()), &out,
                                              static_cast<utf8proc_option_t>(form));
      if (n < 0) fail(Errc::InvalidArgument, "text is not valid UTF-8");
      std::string r(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
      std::free(out);
      return r;
    }
    if (type == "Replace") return replaceAll(s, patternString(n.at("pattern"), label), n.at("content").get<std::string>());
    if (type == "Prepend") return s.empty() ? s : n.at("prepend").get<std::string>() + s;
    if (type == "Lowercase") {
      std::string r;
      for (const auto& c : chars(s)) {
        utf8proc_int32_t cp;
        utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(c.data()), static_cast<utf8proc_ssize_t>(c.size()), &cp);
        // HF lowercases with Rust's char::to_lowercase, which also applies SpecialCasing's one unconditional
        // lowercase mapping to several characters: U+0130 (İ) -> "i" U+0307 (found by differential fuzzing).
        if (cp == 0x130) r += "i\u0307";
        else r += utf8(static_cast<std::uint32_t>(utf8proc_tolower(cp)));
      }
      return r;
    }
    fail(Errc::Unsupported, "{}: normalizer \"{}\" is not supported", label, type);
  }

  // Pre-tokenization: pieces of text, each then split further or mapped to byte-level characters. As in HF, every
  // step works on each piece the steps before it left, and empty pieces are dropped.
  void preTokenize(const json& p, std::vector<Piece>& pieces, std::size_t& regexIndex) const {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    if (type == "Sequence") {
      for (const auto& sub : p.at("pretokenizers")) preTokenize(sub, pieces, regexIndex);
      return;
    }
    std::vector<Piece> out;
    if (type == "Split") {
      const Regex& re = *regexes[regexIndex++];
      const std::string behavior = p.value("behavior", "Isolated");
      for (const auto& piece : pieces) splitPiece(piece, regexSpans(re, piece.text, p.value("invert", false)), behavior, out, label);
    } else if (type == "Digits") {
      const std::string behavior = p.value("individual_digits", false) ? "Isolated" : "Contiguous";
      for (const auto& piece : pieces) splitPiece(piece, charSpans(piece.text, isNumeric), behavior, out, label);
    } else if (type == "ByteLevel") {
      const auto& t = byteLevel();
      const bool prefix = p.value("add_prefix_space", false), split = p.value("use_regex", true);
      const Regex* re = split ? regexes[regexIndex++].get() : nullptr;
      for (auto piece : pieces) {
        if (prefix && piece.text[0] != ' ') piece.text.insert(0, 1, ' ');
        if (re) splitPiece(piece, regexSpans(*re, piece.text, false), "Isolated", out, label);
        else out.push_back(std::move(piece));
      }
      for (auto& piece : out) {
        std::string mapped;
        for (unsigned char c : piece.text) mapped += t.toChar[c];
        piece.text = std::move(mapped);
      }
    } else if (type == "Metaspace") {
      const std::string rep = p.value("replacement", "\u2581");
      const std::string scheme = metaspaceScheme(p);
      const bool split = p.value("split", true);
      for (auto piece : pieces) {
        piece.text = replaceAll(piece.text, " ", rep);
        if (piece.text.compare(0, rep.size(), rep) != 0 && (scheme == "always" || (scheme == "first" && piece.atStart)))
          piece.text.insert(0, rep);
        if (!split) {
          out.push_back(std::move(piece));
          continue;
        }
        const utf8proc_int32_t repChar = codePoint(rep, 0).first;  // HF's replacement is one character
        splitPiece(piece, charSpans(piece.text, [&](utf8proc_int32_t c) { return c == repChar; }), "MergedWithNext", out,
                   label);
      }
    } else {
      fail(Errc::Unsupported, "{}: pre-tokenizer \"{}\" is not supported", label, type);
    }
    pieces.swap(out);
  }

  // Metaspace's prepend_scheme, or for files written before it existed, add_prefix_space.
  static std::string metaspaceScheme(const json& p) {
    if (p.contains("prepend_scheme")) return p.at("prepend_scheme").get<std::string>();
    return p.value("add_prefix_space", true) ? "always" : "never";
  }

  void bpe(const std::string& word, std::vector<std::int32_t>& ids) const {
    if (word.empty()) return;
    if (ignoreMerges)
      if (const auto it = vocab.find(word); it != vocab.end()) {
        ids.push_back(it->second);
        return;
      }
    std::vector<std::string> sym = chars(word);
    for (;;) {  // merge the lowest-ranked adjacent pair (leftmost on ties) until none is left
      int best = -1;
      std::size_t at = 0;
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
        const auto it = mergeRank.find(sym[i] + '\x01' + sym[i + 1]);
        if (it != mergeRank.end() && (best < 0 || it->second < best)) {
          best = it->second;
          at = i;
        }
      }
      if (best < 0) break;
      sym[at] += sym[at + 1];
      sym.erase(sym.begin() + static_cast<long>(at) + 1);
    }
    bool lastWasUnk = false;
    for (const auto& s : sym) {
      if (const auto it = vocab.find(s); it != vocab.end()) {
        ids.push_back(it->second);
        lastWasUnk = false;
        continue;
      }
      if (byteFallback) {
        bool all = true;
        std::vector<std::int32_t> bytes;
        for (unsigned char c : s) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", c);
          const auto it = vocab.find(name);
          if (it == vocab.end()) { all = false; break; }
          bytes.push_back(it->second);
        }
        if (all) {
          ids.insert(ids.end(), bytes.begin(), bytes.end());
          lastWasUnk = false;
          continue;
        }
      }
      if (!unk) fail(Errc::InvalidArgument, "{}: \"{}\" is not in the vocabulary and there is no unk token", label, s);
      if (!(fuseUnk && lastWasUnk)) ids.push_back(*unk);
      lastWasUnk = true;
    }
  }

  // One piece of normalized text between added tokens: pre-tokenized, then each piece through BPE.
  void encodePiece(Piece piece, std::vector<std::int32_t>& ids) const {
    std::vector<Piece> pieces{std::move(piece)};
    std::size_t regexIndex = 0;
    preTokenize(preTokenizer, pieces, regexIndex);
    for (const auto& p : pieces) bpe(p.text, ids);
  }

  // HF's AddedVocabulary::find_matches: the added tokens of set `which` (0: raw, 1: normalized) in s, leftmost-
  // longest, honouring single_word, lstrip and rstrip. The splits cover s; token is null between tokens.
  struct Split {
    std::size_t b, e;
    const Added* token;
  };
  std::vector<Split> findAdded(const std::string& s, int which) const {
    std::vector<Split> out;
    std::size_t startOffset = 0;
    for (std::size_t at = 0; at < s.size();) {
      const Added* hit = nullptr;
      for (const Added* a : addedByByte[which][static_cast<unsigned char>(s[at])])
        if (s.compare(at, a->pattern.size(), a->pattern) == 0) {
          hit = a;  // the longest, as they are sorted
          break;
        }
      if (!hit) {
        ++at;
        continue;
      }
      std::size_t start = at, stop = at + hit->pattern.size();
      at = stop;  // the search goes on after the match itself, not after stripped whitespace (as HF's)
      if (hit->singleWord &&
          ((start > 0 && isWordChar(codePoint(s, previousCodePoint(s, start)).first)) ||
           (stop < s.size() && isWordChar(codePoint(s, stop).first))))
        continue;
      if (hit->lstrip) {
        std::size_t first = start;
        while (first > 0 && isSpace(codePoint(s, previousCodePoint(s, first)).first)) first = previousCodePoint(s, first);
        start = std::max(first, startOffset);
      }
      if (hit->rstrip)
        while (stop < s.size() && isSpace(codePoint(s, stop).first)) stop += codePoint(s, stop).second;
      if (startOffset < start) out.push_back({startOffset, start, nullptr});
      out.push_back({start, stop, hit});
      startOffset = stop;
    }
    if (startOffset < s.size()) out.push_back({startOffset, s.size(), nullptr});
    return out;
  }

  // The post-processor's special tokens around ids (TemplateProcessing, Roberta/BertProcessing, ByteLevel: ids
  // unchanged, Sequence). Also run once on no ids at load to reject a post-processor this build does not know.
  std::vector<std::int32_t> postProcess(const json& p, std::vector<std::int32_t> ids) const {
    if (p.is_null()) return ids;
    const std::string type = p.value("type", "");
    if (type == "Sequence") {
      for (const auto& sub : p.at("processors")) ids = postProcess(sub, std::move(ids));
      return ids;
    }
    if (type == "ByteLevel") return ids;  // offsets only
    if (type == "TemplateProcessing") {
      std::vector<std::int32_t> out;
      for (const auto& piece : p.at("single")) {
        if (piece.contains("Sequence")) {
          out.insert(out.end(), ids.begin(), ids.end());
        } else if (piece.contains("SpecialToken")) {
          const std::string name = piece.at("SpecialToken").at("id").get<std::string>();
          const auto& st = p.at("special_tokens");
          if (!st.contains(name)) fail(Errc::InvalidJson, "{}: post-processor names special token \"{}\" it does not define", label, name);
          for (const auto& id : st[name].at("ids")) out.push_back(tokenIdFrom(id, label));
        }
      }
      return out;
    }
    if (type == "RobertaProcessing" || type == "BertProcessing") {
      ids.insert(ids.begin(), tokenIdFrom(p.at("cls").at(1), label));
      ids.push_back(tokenIdFrom(p.at("sep").at(1), label));
      return ids;
    }
    fail(Errc::Unsupported, "{}: post-processor \"{}\" is not supported", label, type);
  }

  std::vector<std::string> decodeTokens(std::vector<std::string> tokens, const json& d) const {
    if (d.is_null()) return tokens;
    const std::string type = d.value("type", "");
    if (type == "Sequence") {
      for (const auto& sub : d.at("decoders")) tokens = decodeTokens(std::move(tokens), sub);
      return tokens;
    }
    if (type == "ByteLevel") {
      const auto& t = byteLevel();
      std::string bytes;
      for (const auto& tok : tokens)
        for (const auto& c : chars(tok)) {
          const auto it = t.toByte.find(c);
          bytes += it == t.toByte.end() ? c : std::string(1, static_cast<char>(it->second));
        }
      return {lossyUtf8(bytes)};
    }
    if (type == "Replace") {
      for (auto& tok : tokens) tok = replaceAll(tok, patternString(d.at("pattern"), label), d.at("content").get<std::string>());
      return tokens;
    }
    if (type == "Fuse") {
      std::string all;
      for (const auto& tok : tokens) all += tok;
      return {all};
    }
    if (type == "Strip") {
      const std::string c = d.value("content", " ");
      const int start = d.value("start", 0), stop = d.value("stop", 0);
      for (auto& tok : tokens) {
        for (int i = 0; i < start && tok.compare(0, c.size(), c) == 0; ++i) tok.erase(0, c.size());
        for (int i = 0; i < stop && tok.size() >= c.size() && tok.compare(tok.size() - c.size(), c.size(), c) == 0; ++i)
          tok.erase(tok.size() - c.size());
      }
      return tokens;
    }
    if (type == "ByteFallback") {  // runs of <0xXX> become their bytes, or U+FFFD per byte if not valid UTF-8
      std::vector<std::string> out;
      std::string pending;
      std::size_t pendingCount = 0;
      auto flush = [&] {
        if (pendingCount == 0) return;
        utf8proc_int32_t cp;
        bool valid = true;
        for (std::size_t i = 0; i < pending.size();) {
          const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(pending.data() + i),
                                          static_cast<utf8proc_ssize_t>(pending.size() - i), &cp);
          if (n <= 0) { valid = false; break; }
          i += static_cast<std::size_t>(n);
        }
        if (valid) out.push_back(pending);
        else for (std::size_t i = 0; i < pendingCount; ++i) out.push_back("\uFFFD");
        pending.clear();
        pendingCount = 0;
      };
      for (const auto& tok : tokens) {
        if (tok.size() == 6 && tok.compare(0, 3, "<0x") == 0 && tok[5] == '>') {
          pending += static_cast<char>(std::stoi(tok.substr(3, 2), nullptr, 16));
          ++pendingCount;
        } else {
          flush();
          out.push_back(tok);
        }
      }
      flush();
      return out;
    }
    if (type == "Metaspace") {  // as HF: every replacement character of the first token goes, unless "never"
      const std::string rep = d.value("replacement", "\u2581");
      const bool dropFirst = metaspaceScheme(d) != "never";
      for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = replaceAll(tokens[i], rep, i == 0 && dropFirst ? "" : " ");
      return tokens;
    }
    fail(Errc::Unsupported, "{}: decoder \"{}\" is not supported", label, type);
  }

  void compileRegexes(const json& p) {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    if (type == "Sequence") {
      for (const auto& sub : p.at("pretokenizers")) compileRegexes(sub);
    } else if (type == "Split") {
      std::vector<Piece> none;  // splitPiece on nothing: refuses a behavior it does not know, now
      splitPiece({}, {}, p.value("behavior", "Isolated"), none, label);
      const auto& pat = p.at("pattern");
      const std::string re = pat.contains("Regex") ? pat.at("Regex").get<std::string>() : [&] {
        std::string lit, s = pat.at("String").get<std::string>();  // literal: quote it
        for (char c : s) {
          if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) lit += '\\';
          lit += c;
        }
        return lit;
      }();
      regexes.push_back(std::make_unique<Regex>(re));
    } else if (type == "ByteLevel" && p.value("use_regex", true)) {
      regexes.push_back(std::make_unique<Regex>(kGpt2Pattern));
    }
  }
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::fromFile(const std::filesystem::path& path) { return fromJson(readJsonFile(path), path.string()); }

Tokenizer Tokenizer::fromJson(const json& j, const std::string& label) {
  try {
    return build(j, label);
  } catch (const json::exception& e) {  // a member of the wrong type where the parts above do not look
    fail(Errc::InvalidJson, "{}: malformed tokenizer.json ({})", label, jsonProblem(e));
  }
}

Tokenizer Tokenizer::build(const json& j, const std::string& label) {
  Tokenizer t;
  Impl& m = *t.impl_;
  m.label = label;
  if (!j.is_object() || !j.contains("model") || !j.at("model").is_object())
    fail(Errc::InvalidJson, "{}: no \"model\" object", label);
  const auto& model = j.at("model");
  const std::string type = model.value("type", "BPE");
  if (type != "BPE") fail(Errc::Unsupported, "{}: tokenizer model \"{}\" is not supported (only BPE)", label, type);
  try {
    for (const auto& [tok, id] : model.at("vocab").items()) m.vocab[tok] = tokenIdFrom(id, label);
    int rank = 0;
    for (const auto& merge : model.at("merges")) {
      std::string a, b;
      if (merge.is_string()) {  // "a b"
        const std::string s = merge.get<std::string>();
        const auto sp = s.find(' ', 1);
        if (sp == std::string::npos) fail(Errc::InvalidJson, "{}: malformed merge \"{}\"", label, s);
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else {  // ["a", "b"]
        a = merge.at(0).get<std::string>();
        b = merge.at(1).get<std::string>();
      }
      m.mergeRank.emplace(a + '\x01' + b, rank++);
    }
    m.ignoreMerges = model.value("ignore_merges", false);
    m.byteFallback = model.value("byte_fallback", false);
    m.fuseUnk = model.value("fuse_unk", false);
    if (model.contains("unk_token") && model.at("unk_token").is_string()) {
      const auto it = m.vocab.find(model.at("unk_token").get<std::string>());
      if (it != m.vocab.end()) m.unk = it->second;
    }
    if (j.contains("added_tokens") && j.at("added_tokens").is_array())
      for (const auto& a : j.at("added_tokens")) {
        const std::string content = a.at("content").get<std::string>();
        const bool special = a.value("special", false);
        // HF's default: a special token is matched as written, any other in the normalized text
        m.added.push_back({content, content, tokenIdFrom(a.at("id"), label), special, a.value("single_word", false),
                           a.value("lstrip", false), a.value("rstrip", false), a.value("normalized", !special)});
      }
  } catch (const json::exception& e) {
    fail(Errc::InvalidJson, "{}: malformed BPE model ({})", label, jsonProblem(e));
  }
  std::int32_t maxId = -1;
  for (const auto& [tok, id] : m.vocab) maxId = std::max(maxId, id);
  for (const auto& a : m.added) maxId = std::max(maxId, a.id);
  // ids index a table; the largest vocabularies have a few hundred thousand tokens
  if (maxId > kMaxTokenId)
    fail(Errc::InvalidJson, "{}: token id {} is out of range (this build reads ids up to {})", label, maxId, kMaxTokenId);
  m.idToToken.resize(static_cast<std::size_t>(maxId + 1));
  for (const auto& [tok, id] : m.vocab)
    if (id >= 0) m.idToToken[static_cast<std::size_t>(id)] = tok;
  try {
    auto get = [&](const char* key) { return j.contains(key) ? j[key] : json(nullptr); };
    m.normalizer = get("normalizer");
    m.preTokenizer = get("pre_tokenizer");
    m.decoder = get("decoder");
    m.postProcessor = get("post_processor");
    m.compileRegexes(m.preTokenizer);
    for (auto& a : m.added) {  // added tokens win over the model's vocabulary both ways, as in HF
      if (a.id < 0) fail(Errc::InvalidJson, "{}: added token \"{}\" has a negative id", label, a.content);
      if (a.normalized) a.pattern = m.normalize(a.content, m.normalizer);
      m.vocab[a.content] = a.id;
      // decoding hands the decoder what was matched: a normalized token's normalized form (as HF since 0.19)
      m.idToToken[static_cast<std::size_t>(a.id)] = a.pattern;
      if (a.special) m.specialIds.insert(a.id);
    }
    for (const auto& a : m.added)
      if (!a.pattern.empty()) m.addedByByte[a.normalized ? 1 : 0][static_cast<unsigned char>(a.pattern[0])].push_back(&a);
    for (auto& set : m.addedByByte)
      for (auto& list : set)
        std::stable_sort(list.begin(), list.end(), [](const auto* a, const auto* b) { return a->pattern.size() > b->pattern.size(); });
    // Run every component once on nothing, so that one this build does not know is an error now, not at the first use.
    std::vector<Piece> none;
    std::size_t regexIndex = 0;
    m.normalize("", m.normalizer);
    m.preTokenize(m.preTokenizer, none, regexIndex);
    m.decodeTokens({}, m.decoder);
    m.postProcess(m.postProcessor, {});
  } catch (const json::exception& e) {
    fail(Errc::InvalidJson, "{}: malformed tokenizer.json ({})", label, jsonProblem(e));
  }
  return t;
}

std::vector<std::int32_t> Tokenizer::encode(const std::string& text, bool addSpecialTokens) const {
  checkUtf8(text);
  try {
    return encodeValid(text, addSpecialTokens);
  } catch (const json::exception& e) {  // a component's member of the wrong type, met only on some texts
    fail(Errc::InvalidJson, "{}: malformed tokenizer.json ({})", impl_->label, jsonProblem(e));
  }
}

std::vector<std::int32_t> Tokenizer::encodeValid(const std::string& text, bool addSpecialTokens) const {
  const Impl& m = *impl_;
  std::vector<std::int32_t> ids;
  // As HF's AddedVocabulary: tokens matched as written are split out of the raw text, each piece between them is
  // normalized and the normalized tokens split out of it, and what remains is pre-tokenized and goes through BPE.
  for (const auto& raw : m.findAdded(text, 0)) {
    if (raw.token) {
      ids.push_back(raw.token->id);
      continue;
    }
    const std::string normalized = m.normalize(text.substr(raw.b, raw.e - raw.b), m.normalizer);
    for (const auto& sp : m.findAdded(normalized, 1)) {
      if (sp.token) ids.push_back(sp.token->id);
      else m.encodePiece({normalized.substr(sp.b, sp.e - sp.b), raw.b == 0 && sp.b == 0}, ids);
    }
  }
  return addSpecialTokens ? m.postProcess(m.postProcessor, std::move(ids)) : ids;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids, bool skipSpecialTokens) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  for (auto id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= m.idToToken.size()) continue;
    if (skipSpecialTokens && m.specialIds.count(id)) continue;
    tokens.push_back(m.idToToken[static_cast<std::size_t>(id)]);
  }
  std::string out;
  if (m.decoder.is_null()) {  // HF joins the tokens with spaces when there is no decoder
    for (std::size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  try {
    for (const auto& t : m.decodeTokens(tokens, m.decoder)) out += t;
  } catch (const json::exception& e) {
    fail(Errc::InvalidJson, "{}: malformed tokenizer.json ({})", m.label, jsonProblem(e));
  }
  return out;
}

std::int64_t Tokenizer::vocabSize() const { return static_cast<std::int64_t>(impl_->idToToken.size()); }

std::int32_t Tokenizer::tokenId(const std::string& token) const {
  const auto it = impl_->vocab.find(token);
  return it == impl_->vocab.end() ? -1 : it->second;
}

std::string Tokenizer::token(std::int32_t id) const {
  return id >= 0 && static_cast<std::size_t>(id) < impl_->idToToken.size() ? impl_->idToToken[static_cast<std::size_t>(id)] : "";
}

}  // namespace eq::text
