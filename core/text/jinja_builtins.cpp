// The Jinja built-ins: Python's str operations and the methods of str, dict and list values, the loop object, JSON,
// and jinja2's filters, tests and globals, with the render entry point that defines the globals.
#include "text/jinja_internal.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <unordered_map>

namespace eq::text::jinja::detail {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Generators, and the arguments of built-ins.

bool isIterator(const Value& v) { return v.is(Kind::List) && v.l().iterator; }

// jinja2's unique / map / select / reject / selectattr / rejectattr / items are generators: the value is always true,
// and an error (a value that cannot be iterated, a failing filter or test) surfaces only when it is iterated. We
// compute the items at once and keep the error for then.
template <typename F>
Value lazily(F&& compute) {
  try {
    return Value::iterator(compute(), "generator");
  } catch (RuntimeFailure& f) {
    return Value::iterator({}, "generator", std::move(f.message));
  }
}

// Arguments bound to a builtin's parameter names, like a Python signature with defaults.
class Params {
 public:
  Params(const char* fn, Args& args, std::initializer_list<const char*> names) : names_(names), given_(names.size()) {
    if (args.pos.size() > names_.size())
      fail("{}() takes at most {} argument(s) ({} given)", fn, names_.size(), args.pos.size());
    for (std::size_t k = 0; k < args.pos.size(); ++k) given_[k] = &args.pos[k];
    for (auto& kv : args.kw) {
      const auto& key = kv.first;
      auto& value = kv.second;
      const auto it = std::find_if(names_.begin(), names_.end(), [&](const char* n) { return key == n; });
      if (it == names_.end()) fail("{}() got an unexpected keyword argument {}", fn, strRepr(key));
      const std::size_t k = static_cast<std::size_t>(it - names_.begin());
      if (given_[k]) fail("{}() got multiple values for argument {}", fn, strRepr(key));
      given_[k] = &value;
    }
  }
  const Value* get(std::size_t k) const { return given_[k]; }
  Value getOr(std::size_t k, Value def) const { return given_[k] ? *given_[k] : std::move(def); }

 private:
  std::vector<const char*> names_;
  std::vector<const Value*> given_;
};

// ---------------------------------------------------------------------------------------------------------------
// Python str operations on code points.

// Python's str.upper() / lower() / title() use Unicode's full case mappings: these are the unconditional ones
// that differ from the simple mappings (SpecialCasing.txt); the rest map one code point to one.
enum class Case { Upper, Lower, Title };

const char* specialCase(char32_t c, Case to) {
  struct Entry {
    char32_t cp;
    const char *upper, *lower, *title;
  };
  static const Entry kSpecial[] = {
      {0x00DF, "SS", nullptr, "Ss"},           {0x0130, nullptr, "i\u0307", nullptr},
      {0x0149, "\u02BCN", nullptr, "\u02BCN"}, {0x01F0, "J\u030C", nullptr, "J\u030C"},
      {0xFB00, "FF", nullptr, "Ff"},           {0xFB01, "FI", nullptr, "Fi"},
      {0xFB02, "FL", nullptr, "Fl"},           {0xFB03, "FFI", nullptr, "Ffi"},
      {0xFB04, "FFL", nullptr, "Ffl"},         {0xFB05, "ST", nullptr, "St"},
      {0xFB06, "ST", nullptr, "St"},
  };
  for (const Entry& e : kSpecial)
    if (e.cp == c) return to == Case::Upper ? e.upper : to == Case::Lower ? e.lower : e.title;
  return nullptr;
}

void appendCased(std::string& out, char32_t c, Case to) {
  if (const char* special = specialCase(c, to)) {
    out += special;
    return;
  }
  appendUtf8(out, to == Case::Upper ? toUpper(c) : to == Case::Lower ? toLower(c) : toTitle(c));
}

std::string mapCase(const std::string& s, Case to) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : decodeUtf8(s)) appendCased(out, c, to);
  return out;
}

std::string pyTitle(const std::string& s) {  // str.title()
  std::string out;
  bool previousCased = false;
  for (char32_t c : decodeUtf8(s)) {
    appendCased(out, c, previousCased ? Case::Lower : Case::Title);
    previousCased = isCased(c);
  }
  return out;
}

std::string pyCapitalize(const std::string& s) {  // str.capitalize(): first character title-cased, the rest lower
  std::string out;
  bool first = true;
  for (char32_t c : decodeUtf8(s)) {
    appendCased(out, c, first ? Case::Title : Case::Lower);
    first = false;
  }
  return out;
}

// jinja2's title filter: words start after runs of -, whitespace, (, {, [ and <.
std::string jinjaTitle(const std::string& s) {
  std::string out;
  bool wordStart = true;
  for (char32_t c : decodeUtf8(s)) {
    const bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || isPySpace(c);
    if (sep) appendUtf8(out, c);
    else appendCased(out, c, wordStart ? Case::Upper : Case::Lower);
    wordStart = sep;
  }
  return out;
}

std::string pyStrip(const std::string& s, const Value& chars, bool left, bool right, const char* fn) {
  std::u32string set;
  const bool whitespace = chars.is(Kind::None) || chars.is(Kind::Undefined);
  if (!whitespace) {
    if (!chars.is(Kind::Str)) fail("{} arg must be None or str", fn);
    set = decodeUtf8(chars.s());
  }
  const std::u32string cps = decodeUtf8(s);
  auto strip = [&](char32_t c) { return whitespace ? isPySpace(c) : set.find(c) != std::u32string::npos; };
  std::size_t b = 0, e = cps.size();
  while (left && b < e && strip(cps[b])) ++b;
  while (right && e > b && strip(cps[e - 1])) --e;
  return encodeUtf8(std::u32string_view(cps).substr(b, e - b));
}

std::vector<std::string> splitWhitespace(const std::string& s, std::int64_t maxsplit, bool fromRight) {
  const std::u32string cps = decodeUtf8(s);
  std::vector<std::u32string> parts;
  if (!fromRight) {
    std::size_t k = 0;
    while (k < cps.size()) {
      while (k < cps.size() && isPySpace(cps[k])) ++k;
      if (k == cps.size()) break;
      if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) == maxsplit) {
        parts.push_back(cps.substr(k));  // the rest, trailing whitespace included
        break;
      }
      std::size_t e = k;
      while (e < cps.size() && !isPySpace(cps[e])) ++e;
      parts.push_back(cps.substr(k, e - k));
      k = e;
    }
  } else {
    std::size_t k = cps.size();
    while (k > 0) {
      while (k > 0 && isPySpace(cps[k - 1])) --k;
      if (k == 0) break;
      if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) == maxsplit) {
        parts.push_back(cps.substr(0, k));  // the rest, leading whitespace included
        break;
      }
      std::size_t b = k;
      while (b > 0 && !isPySpace(cps[b - 1])) --b;
      parts.push_back(cps.substr(b, k - b));
      k = b;
    }
    std::reverse(parts.begin(), parts.end());
  }
  std::vector<std::string> out;
  for (const auto& p : parts) out.push_back(encodeUtf8(p));
  return out;
}

std::vector<std::string> splitBy(const std::string& s, const std::string& sep, std::int64_t maxsplit, bool fromRight) {
  if (sep.empty()) fail("empty separator");
  std::vector<std::string> out;
  if (!fromRight) {
    std::size_t start = 0;
    for (std::size_t hit; (maxsplit < 0 || static_cast<std::int64_t>(out.size()) < maxsplit) &&
                          (hit = s.find(sep, start)) != std::string::npos;
         start = hit + sep.size())
      out.push_back(s.substr(start, hit - start));
    out.push_back(s.substr(start));
    return out;
  }
  std::size_t end = s.size();
  while (maxsplit < 0 || static_cast<std::int64_t>(out.size()) < maxsplit) {
    if (end < sep.size()) break;
    const std::size_t hit = s.rfind(sep, end - sep.size());
    if (hit == std::string::npos) break;
    out.push_back(s.substr(hit + sep.size(), end - hit - sep.size()));
    end = hit;
  }
  out.push_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

bool isLineBreak(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
         c == 0x2028 || c == 0x2029;
}

std::vector<std::string> splitLines(const std::string& s, bool keepEnds) {
  const std::u32string cps = decodeUtf8(s);
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t k = 0; k < cps.size(); ++k) {
    if (!isLineBreak(cps[k])) continue;
    std::size_t end = k + 1;
    if (cps[k] == '\r' && end < cps.size() && cps[end] == '\n') ++end;
    out.push_back(encodeUtf8(std::u32string_view(cps).substr(start, (keepEnds ? end : k) - start)));
    start = end;
    k = end - 1;
  }
  if (start < cps.size()) out.push_back(encodeUtf8(std::u32string_view(cps).substr(start)));
  return out;
}

std::string pyReplace(Interp& in, const std::string& s, const std::string& from, const std::string& to, std::int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` before every character and at the end
    std::int64_t n = 0;
    const std::u32string cps = decodeUtf8(s);
    for (char32_t c : cps) {
      const std::size_t before = out.size();
      if (count < 0 || n < count) out += to, ++n;
      appendUtf8(out, c);
      in.grow(out.size(), out.size() - before);
    }
    if (count < 0 || n < count) out += to;
    return out;
  }
  std::size_t start = 0, hit;
  for (std::int64_t n = 0; (count < 0 || n < count) && (hit = s.find(from, start)) != std::string::npos; ++n) {
    const std::size_t before = out.size();
    out.append(s, start, hit - start);
    out += to;
    start = hit + from.size();
    in.grow(out.size(), out.size() - before);
  }
  out.append(s, start, std::string::npos);
  in.grow(out.size(), s.size() - start);
  return out;
}

// Python's int(text, base) for str: whitespace, sign, underscores between digits, 0x/0o/0b prefixes.
std::optional<std::int64_t> parsePyInt(std::string text, int base) {
  const std::string t = pyStrip(text, Value::none(), true, true, "int");
  std::size_t k = 0;
  bool negative = false;
  if (k < t.size() && (t[k] == '+' || t[k] == '-')) negative = t[k++] == '-';
  auto prefix = [&](char p) { return k + 1 < t.size() && t[k] == '0' && (t[k + 1] == p || t[k + 1] == p - 32); };
  if (base == 0) base = prefix('x') ? 16 : prefix('o') ? 8 : prefix('b') ? 2 : 10;
  if ((base == 16 && prefix('x')) || (base == 8 && prefix('o')) || (base == 2 && prefix('b'))) {
    k += 2;
    if (k < t.size() && t[k] == '_') ++k;
  }
  std::string digits;
  for (; k < t.size(); ++k) {
    if (t[k] == '_' && !digits.empty() && k + 1 < t.size() && t[k + 1] != '_') continue;
    digits += t[k];
  }
  if (digits.empty()) return std::nullopt;
  std::uint64_t value = 0;
  const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size()) return std::nullopt;
  if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + (negative ? 1 : 0))
    fail("integer {} does not fit in 64 bits", t);
  return negative ? static_cast<std::int64_t>(0 - value) : static_cast<std::int64_t>(value);
}

// Python's float(text) for str.
std::optional<double> parsePyFloat(const std::string& text) {
  std::string t = pyStrip(text, Value::none(), true, true, "float");
  std::string lower;
  for (char c : t) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string body = lower.size() && (lower[0] == '+' || lower[0] == '-') ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") return std::strtod(lower.c_str(), nullptr);
  std::string clean;
  bool digit = false;
  for (std::size_t k = 0; k < t.size(); ++k) {
    const char c = t[k];
    if (c == '_' && k > 0 && k + 1 < t.size() && isDigit(t[k - 1]) && isDigit(t[k + 1])) continue;
    if (!(isDigit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) return std::nullopt;
    digit = digit || isDigit(c);
    clean += c;
  }
  if (!digit) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return v;
}

// ---------------------------------------------------------------------------------------------------------------
// Methods of str, dict and list values, and the loop object.

Value bound(const Value& self, std::string name, Value (*fn)(Interp&, const Value&, Args&)) {
  return makeFunction(name, [self, fn](Interp& in, Args& args) {
    in.scan(self);
    return fn(in, self, args);
  });
}

const std::string& needStr(const Value& v, const char* what) {
  if (v.is(Kind::Undefined)) failUndefined(v);
  if (!v.is(Kind::Str)) fail("{} must be str, not {}", what, typeName(v));
  return v.s();
}

std::int64_t optInt(const Value* v, std::int64_t def, const char* what) {
  if (!v || v->is(Kind::None)) return def;
  if (!v->isIntLike()) fail("{} must be an integer, not {}", what, typeName(*v));
  return v->i();
}

Value strList(std::vector<std::string> parts) {
  std::vector<Value> items;
  for (auto& p : parts) items.push_back(Value::str(std::move(p)));
  return Value::list(std::move(items));
}

Value strSplit(Interp& in, const Value& self, Args& args, bool fromRight) {
  Params p(fromRight ? "rsplit" : "split", args, {"sep", "maxsplit"});
  const Value sep = p.getOr(0, Value::none());
  const std::int64_t maxsplit = optInt(p.get(1), -1, "maxsplit");
  in.charge(self.s().size());
  if (sep.is(Kind::None)) return strList(splitWhitespace(self.s(), maxsplit, fromRight));
  return strList(splitBy(self.s(), needStr(sep, "separator"), maxsplit, fromRight));
}

// startswith / endswith with a str or a tuple of str, and optional start / end positions.
Value strAffix(const Value& self, Args& args, bool prefix) {
  Params p(prefix ? "startswith" : "endswith", args, {"affix", "start", "end"});
  if (!p.get(0)) fail("{}() takes at least 1 argument (0 given)", prefix ? "startswith" : "endswith");
  std::u32string cps = decodeUtf8(self.s());
  const Value none = Value::none();
  const auto idx = sliceIndices(cps.size(), p.getOr(1, none), p.getOr(2, none), none);
  cps = idx.empty() ? std::u32string() : cps.substr(idx.front(), idx.size());
  const std::string text = encodeUtf8(cps);
  std::vector<Value> affixes = p.get(0)->is(Kind::List) && p.get(0)->l().tuple ? p.get(0)->l().items : std::vector<Value>{*p.get(0)};
  for (const Value& a : affixes) {
    const std::string& x = needStr(a, prefix ? "startswith first arg" : "endswith first arg");
    if (x.size() <= text.size() && (prefix ? text.compare(0, x.size(), x) : text.compare(text.size() - x.size(), x.size(), x)) == 0)
      return Value::boolean(true);
  }
  return Value::boolean(false);
}

Value strFind(const Value& self, Args& args, bool fromRight, bool raise) {
  Params p(fromRight ? "rfind" : "find", args, {"sub", "start", "end"});
  if (!p.get(0)) fail("find() takes at least 1 argument (0 given)");
  const std::u32string cps = decodeUtf8(self.s()), sub = decodeUtf8(needStr(*p.get(0), "substring"));
  const std::int64_t n = static_cast<std::int64_t>(cps.size());
  std::int64_t b = optInt(p.get(1), 0, "start"), e = optInt(p.get(2), n, "end");
  if (b < 0) b = std::max<std::int64_t>(b + n, 0);
  if (e < 0) e = std::max<std::int64_t>(e + n, 0);
  e = std::min(e, n);
  std::int64_t found = -1;
  if (b <= e && static_cast<std::int64_t>(sub.size()) <= e - b) {
    const std::u32string_view window = std::u32string_view(cps).substr(static_cast<std::size_t>(b), static_cast<std::size_t>(e - b));
    const std::size_t hit = fromRight ? window.rfind(sub) : window.find(sub);
    if (hit != std::u32string_view::npos) found = b + static_cast<std::int64_t>(hit);
  }
  if (found < 0 && raise) fail("substring not found");
  return Value::integer(found);
}

template <bool (*Pred)(char32_t)>
Value strIs(const Value& self) {
  const std::u32string cps = decodeUtf8(self.s());
  return Value::boolean(!cps.empty() && std::all_of(cps.begin(), cps.end(), Pred));
}
bool isDigitCp(char32_t c) { return category(c) == UTF8PROC_CATEGORY_ND; }
bool isAlphaCp(char32_t c) { const auto k = category(c); return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO; }
bool isAlnumCp(char32_t c) { const auto k = category(c); return isAlphaCp(c) || (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO); }

Value strCase(const Value& self, bool wantLower) {  // islower / isupper
  bool cased = false;
  for (char32_t c : decodeUtf8(self.s())) {
    const auto k = category(c);
    if (k == UTF8PROC_CATEGORY_LT || (wantLower ? k == UTF8PROC_CATEGORY_LU : k == UTF8PROC_CATEGORY_LL)) return Value::boolean(false);
    cased = cased || k == (wantLower ? UTF8PROC_CATEGORY_LL : UTF8PROC_CATEGORY_LU);
  }
  return Value::boolean(cased);
}

// str.format with plain replacement fields: {}, {0}, {name}, optionally !s / !r; no format specs.
Value strFormat(Interp& in, const Value& self, Args& args) {
  const std::string& f = self.s();
  std::string out;
  std::size_t autoIndex = 0;
  bool manual = false, automatic = false;
  for (std::size_t k = 0; k < f.size(); ++k) {
    const char c = f[k];
    if (c == '}') {
      if (k + 1 < f.size() && f[k + 1] == '}') ++k;
      else fail("Single '}}' encountered in format string");
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (k + 1 < f.size() && f[k + 1] == '{') {
      out += '{';
      ++k;
      continue;
    }
    const std::size_t close = f.find('}', k);
    if (close == std::string::npos) fail("Single '{{' encountered in format string");
    std::string field = f.substr(k + 1, close - k - 1);
    k = close;
    char conversion = 's';
    if (const std::size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size() || (field[bang + 1] != 's' && field[bang + 1] != 'r')) fail("unsupported conversion in format string");
      conversion = field[bang + 1];
      field.resize(bang);
    }
    if (field.find_first_of(":.[") != std::string::npos) fail("format specifications, attributes and indexes in str.format are not supported");
    const Value* v = nullptr;
    if (field.empty() || std::all_of(field.begin(), field.end(), isDigit)) {
      (field.empty() ? automatic : manual) = true;
      if (manual && automatic) fail("cannot switch from manual field specification to automatic field numbering");
      const std::size_t index = field.empty() ? autoIndex++ : std::stoul(field);
      if (index >= args.pos.size()) fail("Replacement index {} out of range for positional args tuple", index);
      v = &args.pos[index];
    } else {
      const auto kw = std::find_if(args.kw.begin(), args.kw.end(), [&](const auto& p) { return p.first == field; });
      if (kw == args.kw.end()) fail("{}", strRepr(field));
      v = &kw->second;
    }
    const std::size_t before = out.size();
    appendPy(out, *v, conversion == 'r', in.maxBytes());
    in.grow(out.size(), out.size() - before);
  }
  return Value::str(std::move(out));
}

Value noArgs(const char* fn, Args& args, Value result) {
  Params p(fn, args, {});
  return result;
}

}  // namespace

Value strMethod(const Value& self, const std::string& name) {
  using F = Value (*)(Interp&, const Value&, Args&);
  static const std::unordered_map<std::string, F> kMethods = {
      {"strip", [](Interp&, const Value& s, Args& a) { Params p("strip", a, {"chars"}); return Value::str(pyStrip(s.s(), p.getOr(0, Value::none()), true, true, "strip")); }},
      {"lstrip", [](Interp&, const Value& s, Args& a) { Params p("lstrip", a, {"chars"}); return Value::str(pyStrip(s.s(), p.getOr(0, Value::none()), true, false, "lstrip")); }},
      {"rstrip", [](Interp&, const Value& s, Args& a) { Params p("rstrip", a, {"chars"}); return Value::str(pyStrip(s.s(), p.getOr(0, Value::none()), false, true, "rstrip")); }},
      {"split", [](Interp& in, const Value& s, Args& a) { return strSplit(in, s, a, false); }},
      {"rsplit", [](Interp& in, const Value& s, Args& a) { return strSplit(in, s, a, true); }},
      {"splitlines", [](Interp&, const Value& s, Args& a) { Params p("splitlines", a, {"keepends"}); return strList(splitLines(s.s(), truthy(p.getOr(0, Value::boolean(false))))); }},
      {"startswith", [](Interp&, const Value& s, Args& a) { return strAffix(s, a, true); }},
      {"endswith", [](Interp&, const Value& s, Args& a) { return strAffix(s, a, false); }},
      {"upper", [](Interp&, const Value& s, Args& a) { return noArgs("upper", a, Value::str(mapCase(s.s(), Case::Upper))); }},
      {"lower", [](Interp&, const Value& s, Args& a) { return noArgs("lower", a, Value::str(mapCase(s.s(), Case::Lower))); }},
      {"title", [](Interp&, const Value& s, Args& a) { return noArgs("title", a, Value::str(pyTitle(s.s()))); }},
      {"capitalize", [](Interp&, const Value& s, Args& a) { return noArgs("capitalize", a, Value::str(pyCapitalize(s.s()))); }},
      {"replace", [](Interp& in, const Value& s, Args& a) {
         Params p("replace", a, {"old", "new", "count"});
         if (!p.get(1)) fail("replace() takes at least 2 arguments");
         return Value::str(pyReplace(in, s.s(), needStr(*p.get(0), "replace() argument 1"), needStr(*p.get(1), "replace() argument 2"), optInt(p.get(2), -1, "count")));
       }},
      {"find", [](Interp&, const Value& s, Args& a) { return strFind(s, a, false, false); }},
      {"rfind", [](Interp&, const Value& s, Args& a) { return strFind(s, a, true, false); }},
      {"index", [](Interp&, const Value& s, Args& a) { return strFind(s, a, false, true); }},
      {"rindex", [](Interp&, const Value& s, Args& a) { return strFind(s, a, true, true); }},
      {"count", [](Interp&, const Value& s, Args& a) {
         Params p("count", a, {"sub"});
         if (!p.get(0)) fail("count() takes at least 1 argument (0 given)");
         const std::string& sub = needStr(*p.get(0), "count() argument");
         if (sub.empty()) return Value::integer(static_cast<std::int64_t>(codePointCount(s.s())) + 1);
         std::int64_t n = 0;
         for (std::size_t at = s.s().find(sub); at != std::string::npos; at = s.s().find(sub, at + sub.size())) ++n;
         return Value::integer(n);
       }},
      {"join", [](Interp& in, const Value& s, Args& a) {
         Params p("join", a, {"iterable"});
         if (!p.get(0)) fail("join() takes exactly one argument (0 given)");
         std::string out;
         std::size_t k = 0;
         for (const Value& item : iterate(*p.get(0))) {
           if (!item.is(Kind::Str)) fail("sequence item {}: expected str instance, {} found", k, typeName(item));
           const std::size_t before = out.size();
           if (k++) out += s.s();
           out += item.s();
           in.grow(out.size(), out.size() - before);
         }
         return Value::str(std::move(out));
       }},
      {"format", strFormat},
      {"isdigit", [](Interp&, const Value& s, Args& a) { return noArgs("isdigit", a, strIs<isDigitCp>(s)); }},
      {"isalpha", [](Interp&, const Value& s, Args& a) { return noArgs("isalpha", a, strIs<isAlphaCp>(s)); }},
      {"isalnum", [](Interp&, const Value& s, Args& a) { return noArgs("isalnum", a, strIs<isAlnumCp>(s)); }},
      {"isspace", [](Interp&, const Value& s, Args& a) { return noArgs("isspace", a, strIs<isPySpace>(s)); }},
      {"islower", [](Interp&, const Value& s, Args& a) { return noArgs("islower", a, strCase(s, true)); }},
      {"isupper", [](Interp&, const Value& s, Args& a) { return noArgs("isupper", a, strCase(s, false)); }},
  };
  const auto it = kMethods.find(name);
  return it == kMethods.end() ? Value() : bound(self, name, it->second);
}

Value dictMethod(const Value& self, const std::string& name) {
  if (name == "items")
    return bound(self, name, [](Interp&, const Value& d, Args& a) {
      Params p("items", a, {});
      std::vector<Value> pairs;
      for (const auto& [k, v] : d.d().items) pairs.push_back(Value::list({k, v}, true));
      return Value::view(std::move(pairs), "dict_items");
    });
  if (name == "keys")
    return bound(self, name, [](Interp&, const Value& d, Args& a) { return noArgs("keys", a, Value::view(iterate(d), "dict_keys")); });
  if (name == "values")
    return bound(self, name, [](Interp&, const Value& d, Args& a) {
      Params p("values", a, {});
      std::vector<Value> values;
      for (const auto& [k, v] : d.d().items) values.push_back(v);
      return Value::view(std::move(values), "dict_values");
    });
  if (name == "get")
    return bound(self, name, [](Interp&, const Value& d, Args& a) {
      Params p("get", a, {"key", "default"});
      if (!p.get(0)) fail("get expected at least 1 argument, got 0");
      const Value* v = d.d().find(*p.get(0));
      return v ? *v : p.getOr(1, Value::none());
    });
  return Value();
}

Value listMethod(const Value& self, const std::string& name) {
  if (name == "count")
    return bound(self, name, [](Interp&, const Value& l, Args& a) {
      Params p("count", a, {"value"});
      const Value x = p.getOr(0, Value());
      return Value::integer(std::count_if(l.l().items.begin(), l.l().items.end(), [&](const Value& v) { return pyEquals(v, x); }));
    });
  if (name == "index")
    return bound(self, name, [](Interp&, const Value& l, Args& a) {
      Params p("index", a, {"value"});
      const Value x = p.getOr(0, Value());
      const auto& items = l.l().items;
      const auto it = std::find_if(items.begin(), items.end(), [&](const Value& v) { return pyEquals(v, x); });
      if (it == items.end()) fail("{} is not in list", shortRepr(x));
      return Value::integer(it - items.begin());
    });
  return Value();
}

Value loopAttr(const Value& loopValue, const std::string& name) {
  const Loop& lp = *std::get<LoopP>(loopValue.v);
  const std::int64_t n = lp.length(), k = lp.index0;
  if (name == "index") return Value::integer(k + 1);
  if (name == "index0") return Value::integer(k);
  if (name == "revindex") return Value::integer(n - k);
  if (name == "revindex0") return Value::integer(n - k - 1);
  if (name == "first") return Value::boolean(k == 0);
  if (name == "last") return Value::boolean(k == n - 1);
  if (name == "length") return Value::integer(n);
  if (name == "depth") return Value::integer(1);
  if (name == "depth0") return Value::integer(0);
  if (name == "previtem") return k > 0 ? (*lp.items)[static_cast<std::size_t>(k - 1)] : Value::undefined("there is no previous item");
  if (name == "nextitem") return k + 1 < n ? (*lp.items)[static_cast<std::size_t>(k + 1)] : Value::undefined("there is no next item");
  if (name == "changed")
    return makeFunction("changed", [last = lp.lastChanged](Interp&, Args& args) {
      if (!args.kw.empty()) fail("changed() takes no keyword arguments");
      const bool same = last->has_value() && (*last)->size() == args.pos.size() &&
                        std::equal(args.pos.begin(), args.pos.end(), (*last)->begin(), pyEquals);
      if (same) return Value::boolean(false);
      for (const Value& v : args.pos) checkStorable(v);
      *last = args.pos;
      return Value::boolean(true);
    });
  if (name == "cycle")
    return makeFunction("cycle", [k](Interp&, Args& args) {
      if (args.pos.empty()) fail("no items for cycling given");
      return args.pos[static_cast<std::size_t>(k) % args.pos.size()];
    });
  return Value::undefined(attrMissing(loopValue, name));
}

// ---------------------------------------------------------------------------------------------------------------
// JSON: Python's json.dumps (transformers' tojson filter) and the conversion of the render context.

namespace {

struct JsonStyle {
  std::optional<std::string> indent;  // none: one line
  std::string itemSep = ", ", keySep = ": ";
  bool ensureAscii = false, sortKeys = false;
};

void jsonString(const std::string& s, bool ensureAscii, std::string& out) {
  out += '"';
  for (char32_t c : decodeUtf8(s)) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        else if (!ensureAscii || c < 0x7F) appendUtf8(out, c);
        else if (c <= 0xFFFF) out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        else {
          const unsigned v = static_cast<unsigned>(c) - 0x10000;
          out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
        }
    }
  }
  out += '"';
}

std::string jsonFloat(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return floatRepr(d);
}

std::string jsonKey(const Value& k) {
  switch (k.kind()) {
    case Kind::Str: return k.s();
    case Kind::Int: return std::to_string(k.i());
    case Kind::Float: return jsonFloat(k.f());
    case Kind::Bool: return k.b() ? "true" : "false";
    case Kind::None: return "null";
    default: fail("keys must be str, int, float, bool or None, not {}", typeName(k));
  }
}

void dumpJson(Interp& in, const Value& v, const JsonStyle& st, int level, std::string& out);

void jsonNewline(const JsonStyle& st, int level, std::string& out) {
  if (!st.indent) return;
  out += '\n';
  for (int k = 0; k < level; ++k) out += *st.indent;
}

void dumpJsonItems(Interp& in, const Value& v, const JsonStyle& st, int level, std::string& out) {
  const bool isList = v.is(Kind::List);
  const std::size_t n = isList ? v.l().items.size() : v.d().items.size();
  out += isList ? '[' : '{';
  if (n == 0) {
    out += isList ? ']' : '}';
    return;
  }
  std::vector<std::pair<std::string, const Value*>> members;
  if (!isList) {
    for (const auto& [k, x] : v.d().items) members.emplace_back(jsonKey(k), &x);
    if (st.sortKeys) std::stable_sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t before = out.size();
    if (k) out += st.itemSep;
    jsonNewline(st, level + 1, out);
    if (isList) {
      dumpJson(in, v.l().items[k], st, level + 1, out);
    } else {
      jsonString(members[k].first, st.ensureAscii, out);
      out += st.keySep;
      dumpJson(in, *members[k].second, st, level + 1, out);
    }
    in.grow(out.size(), out.size() - before);
  }
  jsonNewline(st, level, out);
  out += isList ? ']' : '}';
}

void dumpJson(Interp& in, const Value& v, const JsonStyle& st, int level, std::string& out) {
  switch (v.kind()) {
    case Kind::None: out += "null"; return;
    case Kind::Bool: out += v.b() ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(v.i()); return;
    case Kind::Float: out += jsonFloat(v.f()); return;
    case Kind::Str: jsonString(v.s(), st.ensureAscii, out); return;
    case Kind::List:  // an iterator or a dict view is no list to json.dumps
      if (!v.l().plain()) break;
      dumpJsonItems(in, v, st, level, out);
      return;
    case Kind::Dict: dumpJsonItems(in, v, st, level, out); return;
    default: break;
  }
  fail("Object of type {} is not JSON serializable", typeName(v));
}

Value fromJson(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxValueDepth) fail("the context nests deeper than {} levels", kMaxValueDepth);
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(j.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      return u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ? Value::integer(static_cast<std::int64_t>(u))
                                                                                      : Value::real(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value::real(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::str(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      for (const auto& x : j) items.push_back(fromJson(x, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (const auto& [k, x] : j.items()) d.set(Value::str(k), fromJson(x, depth + 1));
      return Value::dict(std::move(d));
    }
    default: fail("the context holds a JSON value of an unsupported type");
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Filters (jinja2's builtins that chat templates use, plus transformers' tojson).

using FilterFn = Value (*)(Interp&, const Value&, Args&);

std::string softStr(Interp& in, const Value& v) { return v.is(Kind::Str) ? v.s() : pyStr(v, in.maxBytes()); }

// jinja2's attribute getter: "a.b.0" walks items (integers for digit parts); `def` replaces undefined results.
Value attributePath(Interp& in, Value item, const Value& path, const Value* def = nullptr) {
  std::vector<std::string> parts = path.is(Kind::Str) ? splitBy(path.s(), ".", -1, false) : std::vector<std::string>{};
  if (!path.is(Kind::Str)) item = getItem(in, item, path);
  for (const std::string& part : parts) {
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), isDigit);
    item = getItem(in, item, digits ? Value::integer(std::stoll(part)) : Value::str(part));
  }
  if (def && item.is(Kind::Undefined)) return *def;
  return item;
}

Value filterLength(Interp&, const Value& v, Args& a) { return noArgs("length", a, Value::integer(lengthOf(v))); }

Value filterDefault(Interp&, const Value& v, Args& a) {
  Params p("default", a, {"default_value", "boolean"});
  const bool useDefault = v.is(Kind::Undefined) || (truthy(p.getOr(1, Value::boolean(false))) && !truthy(v));
  return useDefault ? p.getOr(0, Value::str("")) : v;
}

Value filterTrim(Interp& in, const Value& v, Args& a) {
  Params p("trim", a, {"chars"});
  return Value::str(pyStrip(softStr(in, v), p.getOr(0, Value::none()), true, true, "trim"));
}

Value filterReplace(Interp& in, const Value& v, Args& a) {
  Params p("replace", a, {"old", "new", "count"});
  if (!p.get(1)) fail("replace filter needs the old and the new string");
  return Value::str(pyReplace(in, softStr(in, v), softStr(in, *p.get(0)), softStr(in, *p.get(1)), optInt(p.get(2), -1, "count")));
}

Value filterJoin(Interp& in, const Value& v, Args& a) {
  Params p("join", a, {"d", "attribute"});
  const std::string sep = softStr(in, p.getOr(0, Value::str("")));
  std::string out;
  std::size_t k = 0;
  for (Value item : iterate(v)) {
    if (p.get(1)) item = attributePath(in, item, *p.get(1));
    const std::size_t before = out.size();
    if (k++) out += sep;
    if (item.is(Kind::Str)) out += item.s();
    else appendPy(out, item, false, in.maxBytes());
    in.grow(out.size(), out.size() - before);
  }
  return Value::str(std::move(out));
}

Value filterFirst(Interp&, const Value& v, Args& a) {
  Params p("first", a, {});
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value filterLast(Interp&, const Value& v, Args& a) {
  Params p("last", a, {});
  if (isIterator(v)) fail("{} object is not reversible", strRepr(typeName(v)));
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value filterList(Interp&, const Value& v, Args& a) { return noArgs("list", a, makeList(iterate(v))); }

Value filterItems(Interp&, const Value& v, Args& a) {  // a generator (lazily)
  return lazily([&] {
      Params p("items", a, {});
      std::vector<Value> pairs;
      if (v.is(Kind::Undefined)) return pairs;
      if (!v.is(Kind::Dict)) fail("Can only get item pairs from a mapping.");
      for (const auto& [k, x] : v.d().items) pairs.push_back(Value::list({k, x}, true));
      return pairs;
  });
}

Value filterReverse(Interp&, const Value& v, Args& a) {
  Params p("reverse", a, {});
  if (v.is(Kind::Str)) {
    std::u32string cps = decodeUtf8(v.s());
    std::reverse(cps.begin(), cps.end());
    return Value::str(encodeUtf8(cps));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  // reversed() where Python has it; an iterator has none, and jinja2 falls back to a reversed list.
  if (v.is(Kind::List) && !v.l().iterator)
    return Value::iterator(std::move(items), v.l().tuple ? "reversed" : "list_reverseiterator");
  if (v.is(Kind::Dict)) return Value::iterator(std::move(items), "dict_reversekeyiterator");
  return Value::list(std::move(items));
}

Value filterInt(Interp&, const Value& v, Args& a) {
  Params p("int", a, {"default", "base"});
  const Value def = p.getOr(0, Value::integer(0));
  const std::int64_t base = optInt(p.get(1), 10, "base");
  switch (v.kind()) {
    case Kind::Undefined: failUndefined(v);
    case Kind::Bool: case Kind::Int: return Value::integer(v.i());
    case Kind::Float:
      if (!std::isfinite(v.f())) return def;
      if (std::fabs(v.f()) >= 9.2e18) fail("integer overflow (integers beyond 64 bits are not supported)");
      return Value::integer(static_cast<std::int64_t>(v.f()));
    case Kind::Str: {
      if (base == 1 || base < 0 || base > 36) fail("int() base must be >= 2 and <= 36, or 0");
      if (auto i = parsePyInt(v.s(), static_cast<int>(base))) return Value::integer(*i);
      const auto f = parsePyFloat(v.s());
      if (!f || !std::isfinite(*f)) return def;
      if (std::fabs(*f) >= 9.2e18) fail("integer overflow (integers beyond 64 bits are not supported)");
      return Value::integer(static_cast<std::int64_t>(*f));
    }
    default: return def;
  }
}

Value filterFloat(Interp&, const Value& v, Args& a) {
  Params p("float", a, {"default"});
  const Value def = p.getOr(0, Value::real(0.0));
  if (v.is(Kind::Undefined)) failUndefined(v);
  if (v.isNumber()) return Value::real(v.f());
  if (v.is(Kind::Str)) {
    const auto f = parsePyFloat(v.s());
    return f ? Value::real(*f) : def;
  }
  return def;
}

Value filterAbs(Interp&, const Value& v, Args& a) {
  Params p("abs", a, {});
  if (v.is(Kind::Undefined)) failUndefined(v);
  if (v.is(Kind::Float)) return Value::real(std::fabs(v.f()));
  if (!v.isIntLike()) fail("bad operand type for abs(): {}", strRepr(typeName(v)));
  if (v.i() == std::numeric_limits<std::int64_t>::min()) intOverflow();
  return Value::integer(v.i() < 0 ? -v.i() : v.i());
}

// round(x, n) of Python: correctly rounded (glibc's printf rounds the exact binary value, ties to even).
double pyRound(double x, std::int64_t digits) {
  if (!std::isfinite(x) || digits > 300) return x;
  if (digits >= 0) {
    const std::string s = fmt::format("{:.{}f}", x, digits);
    return std::strtod(s.c_str(), nullptr);
  }
  const double scale = std::pow(10.0, static_cast<double>(-digits));
  return std::nearbyint(x / scale) * scale;
}

Value filterRound(Interp&, const Value& v, Args& a) {
  Params p("round", a, {"precision", "method"});
  const std::int64_t precision = optInt(p.get(0), 0, "precision");
  const std::string method = p.get(1) ? needStr(*p.get(1), "method") : "common";
  if (method != "common" && method != "ceil" && method != "floor") fail("method must be common, ceil or floor");
  if (v.is(Kind::Undefined)) failUndefined(v);
  if (!v.isNumber()) fail("type {} doesn't define __round__ method", typeName(v));
  if (method == "common") return v.is(Kind::Float) ? Value::real(pyRound(v.f(), precision)) : Value::integer(v.i());
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = v.f() * scale;
  return Value::real((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value filterUpper(Interp& in, const Value& v, Args& a) { return noArgs("upper", a, Value::str(mapCase(softStr(in, v), Case::Upper))); }
Value filterLower(Interp& in, const Value& v, Args& a) { return noArgs("lower", a, Value::str(mapCase(softStr(in, v), Case::Lower))); }
Value filterCapitalize(Interp& in, const Value& v, Args& a) { return noArgs("capitalize", a, Value::str(pyCapitalize(softStr(in, v)))); }
Value filterTitle(Interp& in, const Value& v, Args& a) { return noArgs("title", a, Value::str(jinjaTitle(softStr(in, v)))); }
Value filterString(Interp& in, const Value& v, Args& a) { return noArgs("string", a, Value::str(softStr(in, v))); }
Value filterSafe(Interp& in, const Value& v, Args& a) { return noArgs("safe", a, Value::str(softStr(in, v))); }

Value filterEscape(Interp& in, const Value& v, Args& a) {
  Params p("escape", a, {});
  std::string out;
  for (char c : softStr(in, v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&#39;"; break;
      case '"': out += "&#34;"; break;
      default: out += c;
    }
  }
  return Value::str(std::move(out));
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Value filterToJson(Interp& in, const Value& v, Args& a) {
  Params p("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonStyle st;
  st.ensureAscii = truthy(p.getOr(0, Value::boolean(false)));
  st.sortKeys = truthy(p.getOr(3, Value::boolean(false)));
  const Value indent = p.getOr(1, Value::none());
  if (indent.isIntLike()) st.indent = std::string(static_cast<std::size_t>(std::clamp<std::int64_t>(indent.i(), 0, 1000)), ' ');
  else if (indent.is(Kind::Str)) st.indent = indent.s();
  else if (!indent.is(Kind::None)) fail("indent must be an integer, a string or None");
  if (st.indent) st.itemSep = ',';
  const Value seps = p.getOr(2, Value::none());
  if (!seps.is(Kind::None)) {
    const std::vector<Value> two = iterate(seps);
    if (two.size() != 2) fail("separators must be an (item_separator, key_separator) pair");
    st.itemSep = needStr(two[0], "item separator");
    st.keySep = needStr(two[1], "key separator");
  }
  std::string out;
  dumpJson(in, v, st, 0, out);
  return Value::str(std::move(out));
}

Value filterIndent(Interp& in, const Value& v, Args& a) {
  Params p("indent", a, {"width", "first", "blank"});
  const Value width = p.getOr(0, Value::integer(4));
  const std::string pad = width.is(Kind::Str) ? width.s() : std::string(static_cast<std::size_t>(std::clamp<std::int64_t>(optInt(&width, 4, "width"), 0, 1000)), ' ');
  const bool first = truthy(p.getOr(1, Value::boolean(false))), blank = truthy(p.getOr(2, Value::boolean(false)));
  // jinja2 appends "\n" to the value itself (`s += newline`), so anything but a string fails there or just after.
  if (v.is(Kind::Undefined)) failUndefined(v);
  if (v.is(Kind::List) && !v.l().tuple && v.l().plain()) fail("'list' object has no attribute 'splitlines'");
  if (!v.is(Kind::Str)) fail("unsupported operand type(s) for +=: {} and 'str'", strRepr(typeName(v)));
  const std::vector<std::string> lines = splitLines(v.s() + "\n", false);
  std::string out;
  for (std::size_t k = 0; k < lines.size(); ++k) {
    const std::size_t before = out.size();
    if (k) out += "\n";
    if (k && (blank || !lines[k].empty())) out += pad;
    out += lines[k];
    in.grow(out.size(), out.size() - before);
  }
  return Value::str(first ? pad + out : out);
}

// Sort keys: the attribute (if any), lower-cased strings unless case-sensitive.
Value sortKey(Interp& in, const Value& item, const Value* attribute, bool caseSensitive) {
  Value key = attribute ? attributePath(in, item, *attribute) : item;
  if (!caseSensitive && key.is(Kind::Str)) key = Value::str(mapCase(key.s(), Case::Lower));
  return key;
}

Value filterSort(Interp& in, const Value& v, Args& a) {
  Params p("sort", a, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = truthy(p.getOr(0, Value::boolean(false))), cs = truthy(p.getOr(1, Value::boolean(false)));
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : iterate(v)) keyed.emplace_back(sortKey(in, item, p.get(2), cs), item);
  // Equal keys are never ordered (jinja2 compares attribute keys as one-element lists, so undefined attributes sort
  // as equal); other keys must be orderable: checked before sorting, as the comparator must not throw.
  auto less = [](const Value& a, const Value& b) { return !pyEquals(a, b) && pyLess(a, b, "<"); };
  for (std::size_t k = 1; k < keyed.size(); ++k) less(keyed[k].first, keyed[0].first);
  in.tick(keyed.size());
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? less(y.first, x.first) : less(x.first, y.first);
  });
  std::vector<Value> out;
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return Value::list(std::move(out));
}

Value filterUnique(Interp& in, const Value& v, Args& a) {
  return lazily([&] {
    Params p("unique", a, {"case_sensitive", "attribute"});
    const bool cs = truthy(p.getOr(0, Value::boolean(false)));
    std::vector<Value> keys, out;
    for (const Value& item : iterate(v)) {
      Value key = sortKey(in, item, p.get(1), cs);
      in.tick(keys.size() / 16 + 1);
      if (std::any_of(keys.begin(), keys.end(), [&](const Value& k) { return pyEquals(k, key); })) continue;
      keys.push_back(std::move(key));
      out.push_back(item);
    }
    return out;
  });
}

Value minMax(Interp& in, const Value& v, Args& a, bool wantMax) {
  Params p(wantMax ? "max" : "min", a, {"case_sensitive", "attribute"});
  const bool cs = truthy(p.getOr(0, Value::boolean(false)));
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  std::size_t best = 0;
  Value bestKey = sortKey(in, items[0], p.get(1), cs);
  for (std::size_t k = 1; k < items.size(); ++k) {
    Value key = sortKey(in, items[k], p.get(1), cs);
    if (wantMax ? pyLess(bestKey, key, "<") : pyLess(key, bestKey, "<")) best = k, bestKey = std::move(key);
  }
  return items[best];
}
Value filterMin(Interp& in, const Value& v, Args& a) { return minMax(in, v, a, false); }
Value filterMax(Interp& in, const Value& v, Args& a) { return minMax(in, v, a, true); }

Value filterSum(Interp& in, const Value& v, Args& a) {
  Params p("sum", a, {"attribute", "start"});
  Value total = p.getOr(1, Value::integer(0));
  for (const Value& item : iterate(v)) total = binaryOp(in, Op::Add, total, p.get(0) ? attributePath(in, item, *p.get(0)) : item);
  return total;
}

Value filterAttr(Interp& in, const Value& v, Args& a) {
  Params p("attr", a, {"name"});
  if (!p.get(0)) fail("attr filter needs a name");
  const std::string name = needStr(*p.get(0), "attribute name");
  if (v.is(Kind::Dict)) {  // "always an attribute is returned and items are not looked up" (jinja2's docs)
    Value m = dictMethod(v, name);
    return m.is(Kind::Undefined) ? Value::undefined(attrMissing(v, name)) : m;
  }
  return getAttr(in, v, name);
}

Value filterMap(Interp& in, const Value& v, Args& a) {
  return lazily([&] {
    std::vector<Value> out;
    if (!truthy(v)) return out;
    if (a.pos.empty()) {
      const auto attr = std::find_if(a.kw.begin(), a.kw.end(), [](const auto& kv) { return kv.first == "attribute"; });
      if (attr == a.kw.end()) fail("map requires a filter argument");
      const auto def = std::find_if(a.kw.begin(), a.kw.end(), [](const auto& kv) { return kv.first == "default"; });
      for (const auto& [k, x] : a.kw)
        if (k != "attribute" && k != "default") fail("Unexpected keyword argument {}", strRepr(k));
      for (const Value& item : iterate(v)) out.push_back(attributePath(in, item, attr->second, def == a.kw.end() ? nullptr : &def->second));
      return out;
    }
    const std::string name = needStr(a.pos[0], "filter name");
    for (const Value& item : iterate(v)) {
      Args rest{std::vector<Value>(a.pos.begin() + 1, a.pos.end()), a.kw};
      out.push_back(in.filter(name, item, rest));
    }
    return out;
  });
}

// select / reject / selectattr / rejectattr.
Value selectOrReject(Interp& in, const Value& v, Args& a, bool keep, bool byAttribute) {
  return lazily([&] {
    std::vector<Value> out;
    if (!truthy(v)) return out;
    std::size_t off = 0;
    if (byAttribute && a.pos.empty()) fail("Missing parameter for attribute name");
    if (byAttribute) off = 1;
    for (const Value& item : iterate(v)) {
      const Value subject = byAttribute ? attributePath(in, item, a.pos[0]) : item;
      bool pass;
      if (a.pos.size() > off) {
        Args rest{std::vector<Value>(a.pos.begin() + static_cast<std::ptrdiff_t>(off) + 1, a.pos.end()), a.kw};
        pass = in.test(needStr(a.pos[off], "test name"), subject, rest);
      } else {
        pass = truthy(subject);
      }
      if (pass == keep) out.push_back(item);
    }
    return out;
  });
}
Value filterSelect(Interp& in, const Value& v, Args& a) { return selectOrReject(in, v, a, true, false); }
Value filterReject(Interp& in, const Value& v, Args& a) { return selectOrReject(in, v, a, false, false); }
Value filterSelectAttr(Interp& in, const Value& v, Args& a) { return selectOrReject(in, v, a, true, true); }
Value filterRejectAttr(Interp& in, const Value& v, Args& a) { return selectOrReject(in, v, a, false, true); }

const std::unordered_map<std::string, FilterFn>& filterTable() {
  static const std::unordered_map<std::string, FilterFn> kFilters = {
      {"abs", filterAbs}, {"attr", filterAttr}, {"capitalize", filterCapitalize}, {"count", filterLength},
      {"d", filterDefault}, {"default", filterDefault}, {"e", filterEscape}, {"escape", filterEscape},
      {"first", filterFirst}, {"float", filterFloat}, {"indent", filterIndent}, {"int", filterInt},
      {"items", filterItems}, {"join", filterJoin}, {"last", filterLast}, {"length", filterLength},
      {"list", filterList}, {"lower", filterLower}, {"map", filterMap}, {"max", filterMax}, {"min", filterMin},
      {"reject", filterReject}, {"rejectattr", filterRejectAttr}, {"replace", filterReplace},
      {"reverse", filterReverse}, {"round", filterRound}, {"safe", filterSafe}, {"select", filterSelect},
      {"selectattr", filterSelectAttr}, {"sort", filterSort}, {"string", filterString}, {"sum", filterSum},
      {"title", filterTitle}, {"tojson", filterToJson}, {"trim", filterTrim}, {"unique", filterUnique},
      {"upper", filterUpper},
  };
  return kFilters;
}

}  // namespace

Value Interp::filter(const std::string& name, Value subject, Args& args) {
  const auto& table = filterTable();
  const auto it = table.find(name);
  if (it == table.end()) fail("No filter named {} found.", strRepr(name));
  scan(subject);
  return it->second(*this, subject, args);
}

// ---------------------------------------------------------------------------------------------------------------
// Tests.

namespace {

// jinja2's odd / even / divisibleby: `value % n == r` with Python's % (floats too: 2.5 is neither odd nor even).
bool testRemainder(const Value& v, const Value& by, std::int64_t r) {
  if (v.is(Kind::Undefined)) failUndefined(v);
  if (v.is(Kind::Str)) {  // Python formats the string with the number
    if (v.s().find('%') != std::string::npos) fail("printf-style string formatting ('%' on a string) is not supported");
    fail("not all arguments converted during string formatting");
  }
  if (!v.isNumber() || !by.isNumber())
    fail("unsupported operand type(s) for %: {} and {}", strRepr(typeName(v)), strRepr(typeName(by)));
  return pyEquals(arithNumbers(Op::Mod, v, by), Value::integer(r));
}

bool isSameAs(const Value& a, const Value& b) {  // Python identity, as far as values are comparable here
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::None: case Kind::Undefined: return a.is(Kind::None) || std::get<UndefinedV>(a.v).why == std::get<UndefinedV>(b.v).why;
    case Kind::Bool: return a.b() == b.b();
    case Kind::Int: return a.i() == b.i() && a.i() >= -5 && a.i() <= 256;  // CPython's small-int cache
    case Kind::Str: return std::get<StrP>(a.v) == std::get<StrP>(b.v);
    case Kind::List: return std::get<ListP>(a.v) == std::get<ListP>(b.v);
    case Kind::Dict: return std::get<DictP>(a.v) == std::get<DictP>(b.v);
    default: return pyEquals(a, b);
  }
}

}  // namespace

bool Interp::test(const std::string& name, const Value& v, Args& args) {
  scan(v);
  auto arg = [&](const char* what) -> const Value& {
    Params p(name.c_str(), args, {what});
    if (!p.get(0)) fail("{}() missing required argument {}", name, strRepr(what));
    return *p.get(0);
  };
  auto noArg = [&] { Params p(name.c_str(), args, {}); };
  const Kind k = v.kind();
  if (name == "defined") return noArg(), k != Kind::Undefined;
  if (name == "undefined") return noArg(), k == Kind::Undefined;
  if (name == "none") return noArg(), k == Kind::None;
  if (name == "boolean") return noArg(), k == Kind::Bool;
  if (name == "false") return noArg(), k == Kind::Bool && !v.b();
  if (name == "true") return noArg(), k == Kind::Bool && v.b();
  if (name == "integer") return noArg(), k == Kind::Int;
  if (name == "float") return noArg(), k == Kind::Float;
  if (name == "number") return noArg(), v.isNumber();
  if (name == "string") return noArg(), k == Kind::Str;
  if (name == "mapping") return noArg(), k == Kind::Dict;
  if (name == "iterable") return noArg(), k == Kind::Undefined || k == Kind::Str || k == Kind::List || k == Kind::Dict || k == Kind::Loop;
  if (name == "sequence")
    return noArg(), k == Kind::Undefined || k == Kind::Str || (k == Kind::List && v.l().plain()) || k == Kind::Dict;
  if (name == "callable") return noArg(), k == Kind::Function || k == Kind::Undefined;
  if (name == "escaped") return noArg(), false;
  if (name == "odd") return noArg(), testRemainder(v, Value::integer(2), 1);
  if (name == "even") return noArg(), testRemainder(v, Value::integer(2), 0);
  if (name == "divisibleby") return testRemainder(v, arg("num"), 0);
  if (name == "lower" || name == "upper") return noArg(), truthy(strCase(Value::str(softStr(*this, v)), name == "lower"));
  if (name == "eq" || name == "equalto" || name == "==") return pyEquals(v, arg("other"));
  if (name == "ne" || name == "!=") return !pyEquals(v, arg("other"));
  if (name == "lt" || name == "lessthan" || name == "<") return compareOp("<", v, arg("other"));
  if (name == "le" || name == "<=") return compareOp("<=", v, arg("other"));
  if (name == "gt" || name == "greaterthan" || name == ">") return compareOp(">", v, arg("other"));
  if (name == "ge" || name == ">=") return compareOp(">=", v, arg("other"));
  if (name == "in") return contains(arg("seq"), v);
  if (name == "sameas") return isSameAs(v, arg("other"));
  if (name == "filter") return noArg(), k == Kind::Str && filterTable().count(v.s());
  if (name == "test") {
    static const char* const kTests[] = {"defined", "undefined", "none", "boolean", "false", "true", "integer", "float",
                                         "number", "string", "mapping", "iterable", "sequence", "callable", "escaped",
                                         "odd", "even", "divisibleby", "lower", "upper", "eq", "equalto", "ne", "lt",
                                         "lessthan", "le", "gt", "greaterthan", "ge", "in", "sameas", "filter", "test",
                                         "==", "!=", "<", "<=", ">", ">="};
    noArg();
    return k == Kind::Str && std::any_of(std::begin(kTests), std::end(kTests), [&](const char* t) { return v.s() == t; });
  }
  fail("No test named {} found.", strRepr(name));
}

// ---------------------------------------------------------------------------------------------------------------
// Globals and the render entry point.

namespace {

Value globalRange(Interp& in, Args& args) {
  if (!args.kw.empty()) fail("range() takes no keyword arguments");
  if (args.pos.empty() || args.pos.size() > 3) fail("range expected 1 to 3 arguments, got {}", args.pos.size());
  for (const Value& v : args.pos) {
    if (v.is(Kind::Undefined)) failUndefined(v);
    if (!v.isIntLike()) fail("{} object cannot be interpreted as an integer", strRepr(typeName(v)));
  }
  const std::int64_t start = args.pos.size() > 1 ? args.pos[0].i() : 0;
  const std::int64_t stop = args.pos.size() > 1 ? args.pos[1].i() : args.pos[0].i();
  const std::int64_t step = args.pos.size() > 2 ? args.pos[2].i() : 1;
  if (step == 0) fail("range() arg 3 must not be zero");
  const double count = std::max(0.0, std::ceil((static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step)));
  if (count > static_cast<double>(kMaxRange))
    fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", kMaxRange);
  in.tick(static_cast<std::uint64_t>(count) / 16);
  std::vector<Value> items;
  for (std::int64_t k = start; step > 0 ? k < stop : k > stop; k += step) items.push_back(Value::integer(k));
  return Value::list(std::move(items));
}

Value globalDict(Interp&, Args& args) {
  if (!args.pos.empty()) fail("dict() takes keyword arguments only here");
  Dict d;
  for (auto& [k, v] : args.kw) dictSet(d, Value::str(k), v);
  return makeDict(std::move(d));
}

Value globalNamespace(Interp&, Args& args) {
  auto ns = std::make_shared<Namespace>();
  auto add = [&](const std::string& k, const Value& v) {
    checkStorable(v);
    ns->set(k, v);
  };
  for (const Value& initial : args.pos) {
    if (!initial.is(Kind::Dict)) fail("namespace() takes mappings and keyword arguments");
    for (const auto& [k, v] : initial.d().items) add(needStr(k, "namespace key"), v);
  }
  for (const auto& [k, v] : args.kw) add(k, v);
  return Value::fromData(NsP(std::move(ns)));
}

Value globalRaise(Interp& in, Args& args) {
  Params p("raise_exception", args, {"message"});
  if (!p.get(0)) fail("raise_exception() missing 1 required positional argument: 'message'");
  throw RaiseFailure{softStr(in, *p.get(0))};
}

Value globalStrftime(Interp& in, Args& args) {
  Params p("strftime_now", args, {"format"});
  if (!p.get(0)) fail("strftime_now() missing required argument 'format'");
  return Value::str(in.options().strftimeNow(needStr(*p.get(0), "strftime_now() format")));
}

}  // namespace

std::string Interp::render(const nlohmann::ordered_json& context) {
  auto globals = std::make_shared<Frame>();
  globals->set("range", makeFunction("range", globalRange));
  globals->set("dict", makeFunction("dict", globalDict));
  globals->set("namespace", makeFunction("namespace", globalNamespace));
  globals->set("raise_exception", makeFunction("raise_exception", globalRaise));
  if (options_.strftimeNow) globals->set("strftime_now", makeFunction("strftime_now", globalStrftime));
  FrameP root = childFrame(globals);
  if (!context.is_null() && !context.is_object()) fail("the render context must be a JSON object");
  if (context.is_object())
    for (const auto& [k, v] : context.items()) root->set(k, fromJson(v, 0));
  exec(tmpl_.body, root);
  return std::move(out_);
}

}  // namespace eq::text::jinja::detail
