// The Jinja lexer: template source to tokens (jinja_internal.h), with jinja2's whitespace control, raw blocks and
// Python's literal syntax.
#include "text/jinja_internal.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace eq::text::jinja::detail {

// ---------------------------------------------------------------------------------------------------------------
// Lexer: jinja2's, with trim_blocks and lstrip_blocks on. Newlines are normalized to \n and one trailing newline
// is dropped (keep_trailing_newline=False) before lexing.

std::string normalizeSource(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t k = 0; k < source.size(); ++k) {
    if (source[k] == '\r') {
      out += '\n';
      if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
    } else {
      out += source[k];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

namespace {

bool isNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isNameChar(char c) { return isNameStart(c) || isDigit(c); }

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {
    lineStarts_.push_back(0);
    for (std::size_t k = 0; k < src_.size(); ++k)
      if (src_[k] == '\n') lineStarts_.push_back(k + 1);
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) lexRoot();
    push(Tok::Eof, "", src_.size());
    return std::move(tokens_);
  }

 private:
  std::string src_;
  std::size_t pos_ = 0;
  bool lineStarting_ = true;
  std::vector<std::size_t> lineStarts_;
  std::vector<Token> tokens_;

  int lineAt(std::size_t offset) const {
    return static_cast<int>(std::upper_bound(lineStarts_.begin(), lineStarts_.end(), offset) - lineStarts_.begin());
  }
  [[noreturn]] void syntax(std::size_t offset, std::string message) const { throw SyntaxFailure{std::move(message), lineAt(offset)}; }
  Token& push(Tok type, std::string text, std::size_t offset) {
    tokens_.push_back(Token{type, std::move(text), 0, 0, lineAt(offset)});
    return tokens_.back();
  }
  bool at(std::size_t p, std::string_view s) const { return src_.compare(p, s.size(), s) == 0; }
  void consumedTo(std::size_t p) {
    pos_ = p;
    lineStarting_ = p > 0 && src_[p - 1] == '\n';
  }

  // The data before a tag: "-" strips all whitespace before it; otherwise lstrip_blocks strips the spaces between
  // the line start and a block or comment tag.
  std::string stripBefore(std::string text, char sign, bool variable) const {
    if (sign == '-') return std::string(rstripPySpace(text));
    if (sign == '+' || variable) return text;
    const std::size_t lpos = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    if ((lpos > 0 || lineStarting_) && lpos < text.size() && pySpaceRun(text, lpos) == text.size() - lpos) text.resize(lpos);
    return text;
  }

  // {% raw %} with its optional whitespace control; returns the end of the tag or npos.
  std::size_t matchRawTag(std::size_t p, std::string_view word, char& sign) const {
    std::size_t q = p + 2;
    sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q++] : 0;
    q += pySpaceRun(src_, q);
    if (!at(q, word)) return std::string::npos;
    q += word.size();
    q += pySpaceRun(src_, q);
    if (at(q, "-%}")) return q + 3 + pySpaceRun(src_, q + 3);
    if (word == "endraw" && at(q, "+%}")) return q + 3;
    if (at(q, "%}")) return q + 2 + (word == "endraw" && at(q + 2, "\n") ? 1 : 0);
    return std::string::npos;
  }

  void lexRoot() {
    std::size_t p = pos_;
    while ((p = src_.find('{', p)) != std::string::npos) {
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) break;
      ++p;
    }
    if (p == std::string::npos) {
      push(Tok::Data, src_.substr(pos_), pos_);
      consumedTo(src_.size());
      return;
    }
    const char kind = src_[p + 1];
    char rawSign = 0;
    const std::size_t rawEnd = kind == '%' ? matchRawTag(p, "raw", rawSign) : std::string::npos;
    const char sign = p + 2 < src_.size() && (src_[p + 2] == '-' || src_[p + 2] == '+') ? src_[p + 2] : 0;
    std::string text = stripBefore(src_.substr(pos_, p - pos_), sign, kind == '{');
    if (!text.empty()) push(Tok::Data, std::move(text), pos_);
    if (rawEnd != std::string::npos) return lexRaw(p, rawEnd);
    consumedTo(p + 2 + (sign ? 1 : 0));
    if (kind == '#') return lexComment(p);
    push(kind == '{' ? Tok::VarBegin : Tok::BlockBegin, "", p);
    lexTag(kind == '%');
  }

  void lexRaw(std::size_t begin, std::size_t bodyStart) {
    consumedTo(bodyStart);
    for (std::size_t p = src_.find("{%", bodyStart); p != std::string::npos; p = src_.find("{%", p + 1)) {
      char sign = 0;
      const std::size_t end = matchRawTag(p, "endraw", sign);
      if (end == std::string::npos) continue;
      std::string text = stripBefore(src_.substr(bodyStart, p - bodyStart), sign, false);
      if (!text.empty()) push(Tok::Data, std::move(text), bodyStart);
      consumedTo(end);
      return;
    }
    syntax(begin, "Missing end of raw directive");
  }

  void lexComment(std::size_t begin) {
    const std::size_t k = src_.find("#}", pos_);
    if (k == std::string::npos) syntax(begin, "Missing end of comment tag");
    std::size_t end = k + 2;
    if (k > pos_ && src_[k - 1] == '-') end += pySpaceRun(src_, end);
    else if (!(k > pos_ && src_[k - 1] == '+') && at(end, "\n")) ++end;
    consumedTo(end);
  }

  // Inside {{ }} or {% %}: tokens until the end delimiter (only when brackets are balanced).
  void lexTag(bool block) {
    std::vector<char> balance;
    for (;;) {
      if (pos_ >= src_.size()) syntax(pos_, "unexpected end of template, the tag is not closed");
      if (balance.empty() && lexTagEnd(block)) return;
      const std::size_t ws = pySpaceRun(src_, pos_);
      if (ws) {
        pos_ += ws;
        continue;
      }
      if (lexNumber() || lexName() || lexString()) continue;
      lexOperator(balance);
    }
  }

  bool lexTagEnd(bool block) {
    const std::size_t p = pos_;
    std::size_t end = std::string::npos;
    if (block) {
      if (at(p, "+%}")) end = p + 3;
      else if (at(p, "-%}")) end = p + 3 + pySpaceRun(src_, p + 3);
      else if (at(p, "%}")) end = p + 2 + (at(p + 2, "\n") ? 1 : 0);
    } else {
      if (at(p, "-}}")) end = p + 3 + pySpaceRun(src_, p + 3);
      else if (at(p, "}}")) end = p + 2;
    }
    if (end == std::string::npos) return false;
    push(block ? Tok::BlockEnd : Tok::VarEnd, "", p);
    consumedTo(end);
    return true;
  }

  // Digits with single underscores between them (Python literal syntax).
  std::size_t digitRun(std::size_t p, bool (*digit)(char)) const {
    std::size_t q = p;
    while (q < src_.size() && digit(src_[q])) {
      ++q;
      if (q + 1 < src_.size() && src_[q] == '_' && digit(src_[q + 1])) ++q;
    }
    return q;
  }

  bool lexNumber() {
    const std::size_t p = pos_;
    if (!isDigit(src_[p])) return false;
    if (src_[p] == '0' && p + 1 < src_.size() && std::strchr("xXoObB", src_[p + 1]) && src_[p + 1]) return lexPrefixedInt();
    std::size_t q = digitRun(p, isDigit);
    bool isFloat = false;
    if (p == 0 || src_[p - 1] != '.') {  // a float never starts right after a dot
      std::size_t r = q;
      if (r + 1 < src_.size() && src_[r] == '.' && isDigit(src_[r + 1])) r = digitRun(r + 1, isDigit), isFloat = true;
      if (r < src_.size() && (src_[r] == 'e' || src_[r] == 'E')) {
        std::size_t e = r + 1;
        if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
        if (e < src_.size() && isDigit(src_[e])) r = digitRun(e, isDigit), isFloat = true;
      }
      if (isFloat) q = r;
    }
    std::string text = src_.substr(p, q - p);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    if (isFloat) {
      push(Tok::Float, text, p).f = std::strtod(text.c_str(), nullptr);
    } else {
      std::int64_t value = 0;
      const auto r = std::from_chars(text.data(), text.data() + text.size(), value);
      if (r.ec != std::errc()) syntax(p, "integer literal " + text + " does not fit in 64 bits");
      push(Tok::Int, text, p).i = value;
    }
    consumedTo(q);
    return true;
  }

  // 0x.., 0o.., 0b.. literals.
  bool lexPrefixedInt() {
    const std::size_t p = pos_;
    const char kind = static_cast<char>(std::tolower(static_cast<unsigned char>(src_[p + 1])));
    const int base = kind == 'x' ? 16 : kind == 'o' ? 8 : 2;
    std::size_t q = p + 2;
    std::string digits;
    while (q < src_.size() && (std::isxdigit(static_cast<unsigned char>(src_[q])) || src_[q] == '_'))
      if (src_[q++] != '_') digits += src_[q - 1];
    std::int64_t value = 0;
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
    if (digits.empty() || r.ec != std::errc() || r.ptr != digits.data() + digits.size())
      syntax(p, "invalid integer literal " + src_.substr(p, q - p));
    push(Tok::Int, src_.substr(p, q - p), p).i = value;
    consumedTo(q);
    return true;
  }

  bool lexName() {
    if (!isNameStart(src_[pos_])) return false;
    std::size_t q = pos_;
    while (q < src_.size() && isNameChar(src_[q])) ++q;
    push(Tok::Name, src_.substr(pos_, q - pos_), pos_);
    consumedTo(q);
    return true;
  }

  bool lexString() {
    const char quote = src_[pos_];
    if (quote != '\'' && quote != '"') return false;
    std::size_t q = pos_ + 1;
    while (q < src_.size() && src_[q] != quote) q += src_[q] == '\\' ? 2 : 1;
    if (q >= src_.size()) syntax(pos_, fmt::format("unexpected char {} at {}", strRepr(std::string(1, quote)), pos_));
    push(Tok::String, unescape(src_.substr(pos_ + 1, q - pos_ - 1), pos_), pos_);
    consumedTo(q + 1);
    return true;
  }

  // Python's unicode-escape decoding of a string literal's body.
  std::string unescape(const std::string& body, std::size_t offset) const {
    std::string out;
    for (std::size_t k = 0; k < body.size(); ++k) {
      if (body[k] != '\\' || k + 1 >= body.size()) {
        out += body[k];
        continue;
      }
      const char c = body[++k];
      switch (c) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': appendUtf8(out, hexEscape(body, k, 2, offset)); break;
        case 'u': appendUtf8(out, hexEscape(body, k, 4, offset)); break;
        case 'U': appendUtf8(out, hexEscape(body, k, 8, offset)); break;
        default:
          if (c >= '0' && c <= '7') {
            unsigned v = static_cast<unsigned>(c - '0');
            for (int n = 0; n < 2 && k + 1 < body.size() && body[k + 1] >= '0' && body[k + 1] <= '7'; ++n)
              v = v * 8 + static_cast<unsigned>(body[++k] - '0');
            appendUtf8(out, v);
          } else {
            out += '\\';
            out += c;
          }
      }
    }
    return out;
  }

  char32_t hexEscape(const std::string& body, std::size_t& k, int digits, std::size_t offset) const {
    if (k + static_cast<std::size_t>(digits) >= body.size()) syntax(offset, "truncated escape in string literal");
    std::uint32_t v = 0;
    const auto r = std::from_chars(body.data() + k + 1, body.data() + k + 1 + digits, v, 16);
    if (r.ec != std::errc() || r.ptr != body.data() + k + 1 + digits || v > 0x10FFFF)
      syntax(offset, "truncated or invalid escape in string literal");
    k += static_cast<std::size_t>(digits);
    return v;
  }

  void lexOperator(std::vector<char>& balance) {
    static const char* const kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kTwo)
      if (at(pos_, op)) {
        push(Tok::Op, op, pos_);
        consumedTo(pos_ + 2);
        return;
      }
    const char c = src_[pos_];
    if (!std::strchr("+-/*%~[](){}><=.:|,;", c) || c == 0)
      syntax(pos_, fmt::format("unexpected char {} at {}", strRepr(std::string(1, c)), pos_));
    if (c == '(' || c == '[' || c == '{') balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) syntax(pos_, fmt::format("unexpected '{}'", c));
      if (balance.back() != c) syntax(pos_, fmt::format("unexpected '{}', expected '{}'", c, balance.back()));
      balance.pop_back();
    }
    push(Tok::Op, std::string(1, c), pos_);
    consumedTo(pos_ + 1);
  }
};

}  // namespace

std::vector<Token> tokenize(std::string source) { return Lexer(std::move(source)).run(); }

}  // namespace eq::text::jinja::detail
