#include "text/tokenizer.h"

#include "common/error.h"
#include "common/regex.h"
#include "format/model_config.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <unordered_map>

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

std::string patternString(const json& p, const std::string& label) {
  if (p.contains("String")) return p["String"].get<std::string>();
  fail(Errc::Unsupported, "{}: only string patterns are supported here", label);
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
    std::int32_t id;
    bool special;
  };
  std::vector<Added> added;  // longest first
  json normalizer, preTokenizer, decoder, postProcessor;
  std::vector<std::unique_ptr<Regex>> regexes;  // compiled Split patterns, in pre-tokenizer order

  std::string normalize(const std::string& s, const json& n) const {
    if (n.is_null()) return s;
    const std::string type = n.value("type", "");
    if (type == "Sequence") {
      std::string r = s;
      for (const auto& sub : n["normalizers"]) r = normalize(r, sub);
      return r;
    }
    if (type == "NFC" || type == "NFKC" || type == "NFD" || type == "NFKD") {
      utf8proc_uint8_t* out = type == "NFC"    ? utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()))
                              : type == "NFKC" ? utf8proc_NFKC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()))
                              : type == "NFD"  ? utf8proc_NFD(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()))
                                               : utf8proc_NFKD(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
      if (!out) fail(Errc::InvalidArgument, "text is not valid UTF-8");
      std::string r(reinterpret_cast<char*>(out));
      std::free(out);
      return r;
    }
    if (type == "Replace") return replaceAll(s, patternString(n["pattern"], label), n["content"].get<std::string>());
    if (type == "Prepend") return s.empty() ? s : n["prepend"].get<std::string>() + s;
    if (type == "Lowercase") {
      std::string r;
      for (const auto& c : chars(s)) {
        utf8proc_int32_t cp;
        utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(c.data()), static_cast<utf8proc_ssize_t>(c.size()), &cp);
        r += utf8(static_cast<std::uint32_t>(utf8proc_tolower(cp)));
      }
      return r;
    }
    fail(Errc::Unsupported, "{}: normalizer \"{}\" is not supported", label, type);
  }

  // Pre-tokenization: pieces of text, each then split further or mapped to byte-level characters.
  void preTokenize(const json& p, std::vector<std::string>& pieces, std::size_t& regexIndex) const {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    if (type == "Sequence") {
      for (const auto& sub : p["pretokenizers"]) preTokenize(sub, pieces, regexIndex);
      return;
    }
    if (type == "Split" || (type == "ByteLevel" && p.value("use_regex", true))) {
      const Regex& re = *regexes[regexIndex++];
      const std::string behavior = type == "Split" ? p.value("behavior", "Isolated") : "Isolated";
      if (type == "Split" && p.value("invert", false)) fail(Errc::Unsupported, "{}: inverted Split is not supported", label);
      std::vector<std::string> out;
      for (const auto& piece : pieces) {
        std::size_t last = 0;
        for (const auto& [b, e] : re.findAll(piece)) {
          if (b > last) out.push_back(piece.substr(last, b - last));
          if (behavior == "Isolated") out.push_back(piece.substr(b, e - b));
          else if (behavior != "Removed") fail(Errc::Unsupported, "{}: Split behavior \"{}\" is not supported", label, behavior);
          last = e;
        }
        if (last < piece.size()) out.push_back(piece.substr(last));
      }
      pieces.swap(out);
    }
    if (type == "ByteLevel") {
      const auto& t = byteLevel();
      for (auto& piece : pieces) {
        std::string mapped;
        if (p.value("add_prefix_space", false) && &piece == &pieces.front() && !piece.empty() && piece[0] != ' ')
          mapped += t.toChar[' '];
        for (unsigned char c : piece) mapped += t.toChar[c];
        piece = mapped;
      }
      return;
    }
    if (type == "Metaspace") {
      const std::string rep = p.value("replacement", "\u2581");
      const std::string scheme = p.value("prepend_scheme", "always");
      for (auto& piece : pieces) {
        piece = replaceAll(piece, " ", rep);
        if (scheme != "never" && piece.compare(0, rep.size(), rep) != 0 && (scheme == "always" || &piece == &pieces.front()))
          piece = rep + piece;
      }
      if (p.value("split", true)) {  // split before each replacement character
        std::vector<std::string> out;
        for (const auto& piece : pieces) {
          std::size_t start = 0;
          for (std::size_t at = piece.find(rep, rep.size()); at != std::string::npos; at = piece.find(rep, at + rep.size())) {
            out.push_back(piece.substr(start, at - start));
            start = at;
          }
          out.push_back(piece.substr(start));
        }
        pieces.swap(out);
      }
      return;
    }
    if (type != "Split") fail(Errc::Unsupported, "{}: pre-tokenizer \"{}\" is not supported", label, type);
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

  void encodePlain(const std::string& text, std::vector<std::int32_t>& ids) const {
    if (text.empty()) return;
    std::vector<std::string> pieces{normalize(text, normalizer)};
    std::size_t regexIndex = 0;
    preTokenize(preTokenizer, pieces, regexIndex);
    for (const auto& p : pieces) bpe(p, ids);
  }

  std::vector<std::string> decodeTokens(std::vector<std::string> tokens, const json& d) const {
    if (d.is_null()) return tokens;
    const std::string type = d.value("type", "");
    if (type == "Sequence") {
      for (const auto& sub : d["decoders"]) tokens = decodeTokens(std::move(tokens), sub);
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
      for (auto& tok : tokens) tok = replaceAll(tok, patternString(d["pattern"], label), d["content"].get<std::string>());
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
    if (type == "Metaspace") {
      const std::string rep = d.value("replacement", "\u2581");
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = replaceAll(tokens[i], rep, " ");
        if (i == 0 && d.value("prepend_scheme", "always") != "never" && !tokens[i].empty() && tokens[i][0] == ' ')
          tokens[i].erase(0, 1);
      }
      return tokens;
    }
    fail(Errc::Unsupported, "{}: decoder \"{}\" is not supported", label, type);
  }

  void compileRegexes(const json& p) {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    if (type == "Sequence") {
      for (const auto& sub : p["pretokenizers"]) compileRegexes(sub);
    } else if (type == "Split") {
      const auto& pat = p["pattern"];
      const std::string re = pat.contains("Regex") ? pat["Regex"].get<std::string>() : [&] {
        std::string lit, s = pat["String"].get<std::string>();  // literal: quote it
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
  Tokenizer t;
  Impl& m = *t.impl_;
  m.label = label;
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    fail(Errc::InvalidJson, "{}: no \"model\" object", label);
  const auto& model = j["model"];
  const std::string type = model.value("type", "BPE");
  if (type != "BPE") fail(Errc::Unsupported, "{}: tokenizer model \"{}\" is not supported (only BPE)", label, type);
  try {
    for (const auto& [tok, id] : model.at("vocab").items()) m.vocab[tok] = id.get<std::int32_t>();
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
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      const auto it = m.vocab.find(model["unk_token"].get<std::string>());
      if (it != m.vocab.end()) m.unk = it->second;
    }
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
      for (const auto& a : j["added_tokens"]) {
        m.added.push_back({a.at("content").get<std::string>(), a.at("id").get<std::int32_t>(), a.value("special", false)});
        m.vocab[m.added.back().content] = m.added.back().id;
      }
  } catch (const json::exception& e) {
    fail(Errc::InvalidJson, "{}: malformed BPE model ({})", label, e.what());
  }
  std::sort(m.added.begin(), m.added.end(), [](const auto& a, const auto& b) { return a.content.size() > b.content.size(); });
  std::int32_t maxId = -1;
  for (const auto& [tok, id] : m.vocab) maxId = std::max(maxId, id);
  m.idToToken.resize(static_cast<std::size_t>(maxId + 1));
  for (const auto& [tok, id] : m.vocab)
    if (id >= 0) m.idToToken[static_cast<std::size_t>(id)] = tok;
  auto get = [&](const char* key) { return j.contains(key) ? j[key] : json(nullptr); };
  m.normalizer = get("normalizer");
  m.preTokenizer = get("pre_tokenizer");
  m.decoder = get("decoder");
  m.postProcessor = get("post_processor");
  m.compileRegexes(m.preTokenizer);
  return t;
}

std::vector<std::int32_t> Tokenizer::encode(const std::string& text, bool addSpecialTokens) const {
  const Impl& m = *impl_;
  checkUtf8(text);
  std::vector<std::int32_t> ids;
  // Added tokens are found in the raw text first (leftmost, longest); the text between them is encoded normally.
  std::size_t at = 0, plainStart = 0;
  while (at < text.size()) {
    const Impl::Added* hit = nullptr;  // the longest that starts here
    for (const auto& a : m.added)
      if (!a.content.empty() && (!hit || a.content.size() > hit->content.size()) &&
          text.compare(at, a.content.size(), a.content) == 0)
        hit = &a;
    if (!hit) {
      ++at;
      continue;
    }
    m.encodePlain(text.substr(plainStart, at - plainStart), ids);
    ids.push_back(hit->id);
    at += hit->content.size();
    plainStart = at;
  }
  m.encodePlain(text.substr(plainStart), ids);
  if (addSpecialTokens && !m.postProcessor.is_null() && m.postProcessor.value("type", "") == "TemplateProcessing") {
    std::vector<std::int32_t> out;
    for (const auto& piece : m.postProcessor["single"]) {
      if (piece.contains("Sequence")) out.insert(out.end(), ids.begin(), ids.end());
      else if (piece.contains("SpecialToken")) {
        const std::string name = piece["SpecialToken"]["id"].get<std::string>();
        const auto& st = m.postProcessor["special_tokens"];
        if (st.contains(name))
          for (const auto& id : st[name]["ids"]) out.push_back(id.get<std::int32_t>());
      }
    }
    return out;
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids, bool skipSpecialTokens) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  for (auto id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= m.idToToken.size()) continue;
    if (skipSpecialTokens &&
        std::any_of(m.added.begin(), m.added.end(), [&](const auto& a) { return a.id == id && a.special; }))
      continue;
    tokens.push_back(m.idToToken[static_cast<std::size_t>(id)]);
  }
  std::string out;
  for (const auto& t : m.decodeTokens(tokens, m.decoder)) out += t;
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
