#include "text/jinja.h"

#include "common/error.h"

#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_map>
#include <variant>
#include <vector>

namespace eq::text::jinja {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Failures raised while parsing or rendering; Template::parse / render turn them into eq::Error with the label.

struct SyntaxFailure {
  std::string message;
  int line;
};
struct UnsupportedFailure {
  std::string message;
  int line;
};
struct RuntimeFailure {
  std::string message;
};
struct RaiseFailure {
  std::string message;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw RuntimeFailure{fmt::format(format, std::forward<Args>(args)...)};
}

// ---------------------------------------------------------------------------------------------------------------
// UTF-8 and Python's notion of characters (str indexing, len, isspace, case) work on code points.

std::u32string decodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  auto p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) {  // not UTF-8: keep the byte as U+FFFD and go on
      cp = 0xFFFD;
      n = 1;
    }
    out.push_back(static_cast<char32_t>(cp));
    p += n;
    left -= n;
  }
  return out;
}

void appendUtf8(std::string& out, char32_t cp) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

std::string encodeUtf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) appendUtf8(out, c);
  return out;
}

std::size_t codePointCount(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// str.isspace() / the `\s` of Python's re module.
bool isPySpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

utf8proc_category_t category(char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)); }
bool isCased(char32_t c) {
  const auto k = category(c);
  return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT;
}
char32_t toUpper(char32_t c) { return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c))); }
char32_t toLower(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))); }
char32_t toTitle(char32_t c) { return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(c))); }

// Python's str.isprintable() per character, for repr().
bool isPrintable(char32_t c) {
  if (c == ' ') return true;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS: case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

// Byte offsets of the code point ending at `end` (exclusive): returns its start and decodes it into `cp`.
std::size_t prevCodePoint(std::string_view s, std::size_t end, char32_t& cp) {
  std::size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && end - start < 4) --start;
  const std::u32string one = decodeUtf8(s.substr(start, end - start));
  cp = one.empty() ? 0xFFFD : one[0];
  return start;
}

std::string_view rstripPySpace(std::string_view s) {
  std::size_t end = s.size();
  while (end > 0) {
    char32_t cp = 0;
    const std::size_t start = prevCodePoint(s, end, cp);
    if (!isPySpace(cp)) break;
    end = start;
  }
  return s.substr(0, end);
}

// Bytes of Python whitespace starting at `pos`.
std::size_t pySpaceRun(std::string_view s, std::size_t pos) {
  std::size_t p = pos;
  while (p < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[p]);
    std::size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    n = std::min(n, s.size() - p);
    const std::u32string one = decodeUtf8(s.substr(p, n));
    if (one.size() != 1 || !isPySpace(one[0])) break;
    p += n;
  }
  return p - pos;
}

// ---------------------------------------------------------------------------------------------------------------
// Values: Python's None/bool/int/float/str/list/tuple/dict plus jinja2's Undefined, namespace, functions (globals,
// macros, bound methods) and the loop object. Containers are immutable once built (the sandbox is immutable);
// only a namespace's attributes change.

struct Value;
struct List;
struct Dict;
struct Namespace;
struct Function;
struct Loop;
using StrP = std::shared_ptr<const std::string>;
using ListP = std::shared_ptr<const List>;
using DictP = std::shared_ptr<const Dict>;
using NsP = std::shared_ptr<Namespace>;
using FnP = std::shared_ptr<const Function>;
using LoopP = std::shared_ptr<const Loop>;

struct UndefinedV {
  std::shared_ptr<const std::string> why;  // the error a misuse raises, as jinja2 words it
};
struct NoneV {};

enum class Kind { Undefined, None, Bool, Int, Float, Str, List, Dict, Namespace, Function, Loop };

struct Value {
  std::variant<UndefinedV, NoneV, bool, std::int64_t, double, StrP, ListP, DictP, NsP, FnP, LoopP> v;

  Value() : v(UndefinedV{}) {}
  static Value undefined(std::string why) { return fromData(UndefinedV{std::make_shared<const std::string>(std::move(why))}); }
  static Value none() { return fromData(NoneV{}); }
  static Value boolean(bool b) { return fromData(b); }
  static Value integer(std::int64_t i) { return fromData(i); }
  static Value real(double d) { return fromData(d); }
  static Value str(std::string s) { return fromData(std::make_shared<const std::string>(std::move(s))); }
  static Value list(std::vector<Value> items, bool tuple = false);
  // A one-shot Python iterator (`type`: "generator" from select / reject / map / unique, "list_reverseiterator"
  // from reverse): its items, but always true, no len(), no index, not equal to a list, not JSON. It can be
  // iterated again here, where Python's would be empty the second time.
  static Value iterator(std::vector<Value> items, const char* type, std::string pending = {});
  static Value view(std::vector<Value> items, const char* type);  // a dict's keys(), values() or items()
  static Value dict(Dict d);
  template <typename T>
  static Value fromData(T&& data) {
    Value r;
    r.v = std::forward<T>(data);
    return r;
  }

  Kind kind() const { return static_cast<Kind>(v.index()); }
  bool is(Kind k) const { return kind() == k; }
  bool isNumber() const { return is(Kind::Bool) || is(Kind::Int) || is(Kind::Float); }
  bool isIntLike() const { return is(Kind::Bool) || is(Kind::Int); }
  const std::string& s() const { return *std::get<StrP>(v); }
  std::int64_t i() const { return is(Kind::Bool) ? std::get<bool>(v) : std::get<std::int64_t>(v); }
  double f() const { return is(Kind::Float) ? std::get<double>(v) : static_cast<double>(i()); }
  bool b() const { return std::get<bool>(v); }
  const List& l() const { return *std::get<ListP>(v); }
  const Dict& d() const { return *std::get<DictP>(v); }
  const std::string& why() const { return *std::get<UndefinedV>(v).why; }
};

struct List {
  std::vector<Value> items;
  bool tuple = false;
  const char* iterator = nullptr;  // a Python iterator's type name (Value::iterator), null for a list or tuple
  std::shared_ptr<const std::string> pending;  // a generator's error, raised when it is iterated (lazily())
  const char* view = nullptr;  // "dict_keys" / "dict_values" / "dict_items": sized, but no index, no JSON
  // A list or tuple proper (not an iterator or a view): indexable, sliceable, concatenable.
  bool plain() const { return !iterator && !view; }
  int depth = 1;  // nesting of lists and dicts, this one included
};

int valueDepth(const Value& v);

// A new list body over `items` (its nesting depth computed), for list(), iterator() and view() to mark.
std::shared_ptr<List> newList(std::vector<Value> items) {
  auto p = std::make_shared<List>();
  for (const Value& x : items) p->depth = std::max(p->depth, valueDepth(x) + 1);
  p->items = std::move(items);
  return p;
}

Value Value::list(std::vector<Value> items, bool tuple) {
  auto p = newList(std::move(items));
  p->tuple = tuple;
  return fromData(ListP(std::move(p)));
}

Value Value::iterator(std::vector<Value> items, const char* type, std::string pending) {
  auto p = newList(std::move(items));
  p->iterator = type;
  if (!pending.empty()) p->pending = std::make_shared<const std::string>(std::move(pending));
  return fromData(ListP(std::move(p)));
}

Value Value::view(std::vector<Value> items, const char* type) {
  auto p = newList(std::move(items));
  p->view = type;
  return fromData(ListP(std::move(p)));
}

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

bool pyEquals(const Value& a, const Value& b);

struct Dict {
  std::vector<std::pair<Value, Value>> items;
  std::unordered_map<std::string, std::size_t> byStr;
  int depth = 1;

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::size_t indexOf(const Value& key) const {
    if (key.is(Kind::Str)) {
      const auto it = byStr.find(key.s());
      return it == byStr.end() ? npos : it->second;
    }
    for (std::size_t k = 0; k < items.size(); ++k)
      if (!items[k].first.is(Kind::Str) && pyEquals(items[k].first, key)) return k;
    return npos;
  }
  const Value* find(const Value& key) const {
    const std::size_t k = indexOf(key);
    return k == npos ? nullptr : &items[k].second;
  }
  const Value* findStr(const std::string& key) const {
    const auto it = byStr.find(key);
    return it == byStr.end() ? nullptr : &items[it->second].second;
  }
  void set(Value key, Value value) {  // a repeated key keeps its first position, as in Python
    const std::size_t k = indexOf(key);
    if (k != npos) {
      items[k].second = std::move(value);
      return;
    }
    if (key.is(Kind::Str)) byStr.emplace(key.s(), items.size());
    items.emplace_back(std::move(key), std::move(value));
  }
};

Value Value::dict(Dict d) {
  for (const auto& [k, v] : d.items) d.depth = std::max(d.depth, std::max(valueDepth(k), valueDepth(v)) + 1);
  return fromData(DictP(std::make_shared<const Dict>(std::move(d))));
}

int valueDepth(const Value& v) {
  if (v.is(Kind::List)) return v.l().depth;
  if (v.is(Kind::Dict)) return v.d().depth;
  return 0;
}

struct Namespace {
  std::vector<std::pair<std::string, Value>> attrs;
  Value* find(const std::string& name) {
    for (auto& [k, v] : attrs)
      if (k == name) return &v;
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    if (Value* old = find(name)) *old = std::move(value);
    else attrs.emplace_back(name, std::move(value));
  }
};

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

class Interp;
struct Function {
  std::string name;
  std::function<Value(Interp&, Args&)> call;
};

struct Loop {
  std::int64_t index0 = 0;
  std::shared_ptr<const std::vector<Value>> items;
  std::shared_ptr<std::optional<std::vector<Value>>> lastChanged;  // loop.changed(): shared by the iterations
  std::int64_t length() const { return static_cast<std::int64_t>(items->size()); }
};

Value makeFunction(std::string name, std::function<Value(Interp&, Args&)> call) {
  return Value::fromData(FnP(std::make_shared<const Function>(Function{std::move(name), std::move(call)})));
}

[[noreturn]] void failUndefined(const Value& v) { throw RuntimeFailure{v.why()}; }

// ---------------------------------------------------------------------------------------------------------------
// Python type names, str(), repr() and float formatting.

const char* typeName(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::List: return v.l().iterator ? v.l().iterator : v.l().view ? v.l().view : v.l().tuple ? "tuple" : "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Function: return "function";
    case Kind::Loop: return "LoopContext";
  }
  return "object";
}

// jinja2's object_type_repr, used in the messages of undefined values.
std::string objectTypeRepr(const Value& v) {
  if (v.is(Kind::None)) return "None";
  if (v.is(Kind::Namespace)) return "jinja2.utils.Namespace object";
  return std::string(typeName(v)) + " object";
}

// repr(float): the shortest digits that round-trip, fixed notation for 1e-4 <= |x| < 1e16, else exponent.
std::string floatRepr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const std::size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exponent = std::stoi(sci.substr(e + 1));
  const int decpt = exponent + 1, n = static_cast<int>(digits.size());
  if (decpt <= -4 || decpt > 16) {
    std::string mant = digits.substr(0, 1);
    if (n > 1) mant += "." + digits.substr(1);
    return sign + mant + fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  }
  if (decpt <= 0) return sign + "0." + std::string(static_cast<std::size_t>(-decpt), '0') + digits;
  if (decpt >= n) return sign + digits + std::string(static_cast<std::size_t>(decpt - n), '0') + ".0";
  return sign + digits.substr(0, static_cast<std::size_t>(decpt)) + "." + digits.substr(static_cast<std::size_t>(decpt));
}

std::string strRepr(const std::string& s) {
  const bool single = s.find('\'') != std::string::npos, dbl = s.find('"') != std::string::npos;
  const char quote = single && !dbl ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : decodeUtf8(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') out += '\\', out += static_cast<char>(c);
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));
    else if (c < 0x7F || isPrintable(c)) appendUtf8(out, c);
    else if (c <= 0xFF) out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));
    else if (c <= 0xFFFF) out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    else out += fmt::format("\\U{:08x}", static_cast<unsigned>(c));
  }
  return out + quote;
}

// Appends str(v), or repr(v), to `out`; fails once `out` passes `cap` bytes (a list may repeat a huge string).
void appendPy(std::string& out, const Value& v, bool repr, std::size_t cap) {
  auto add = [&](std::string_view s) {
    out += s;
    if (out.size() > cap) fail("a value would exceed {} bytes", cap);
  };
  switch (v.kind()) {
    case Kind::Undefined: return add(repr ? "Undefined" : "");
    case Kind::None: return add("None");
    case Kind::Bool: return add(v.b() ? "True" : "False");
    case Kind::Int: return add(std::to_string(v.i()));
    case Kind::Float: return add(floatRepr(v.f()));
    case Kind::Str: return add(repr ? strRepr(v.s()) : v.s());
    case Kind::List: {
      const List& l = v.l();
      if (l.iterator) return add(fmt::format("<{} object>", l.iterator));  // Python adds the address
      if (l.view) {  // dict_items([('a', 1)])
        add(l.view);
        add("(");
      }
      add(l.tuple ? "(" : "[");
      for (std::size_t k = 0; k < l.items.size(); ++k) {
        if (k) add(", ");
        appendPy(out, l.items[k], true, cap);
      }
      if (l.tuple && l.items.size() == 1) add(",");
      add(l.tuple ? ")" : "]");
      if (l.view) add(")");
      return;
    }
    case Kind::Dict: {
      add("{");
      bool first = true;
      for (const auto& [k, x] : v.d().items) {
        if (!first) add(", ");
        first = false;
        appendPy(out, k, true, cap);
        add(": ");
        appendPy(out, x, true, cap);
      }
      return add("}");
    }
    case Kind::Namespace: {
      add("<Namespace {");
      bool first = true;
      for (const auto& [k, x] : std::get<NsP>(v.v)->attrs) {
        if (!first) add(", ");
        first = false;
        add(strRepr(k) + ": ");
        appendPy(out, x, true, cap);
      }
      return add("}>");
    }
    case Kind::Function: return add("<function " + std::get<FnP>(v.v)->name + ">");
    case Kind::Loop: {
      const Loop& lp = *std::get<LoopP>(v.v);
      return add(fmt::format("<LoopContext {}/{}>", lp.index0 + 1, lp.length()));
    }
  }
}

std::string pyStr(const Value& v, std::size_t cap) {
  std::string out;
  appendPy(out, v, false, cap);
  return out;
}

// repr() for error messages: long values are abbreviated.
std::string shortRepr(const Value& v) {
  try {
    std::string out;
    appendPy(out, v, true, 200);
    return out;
  } catch (const RuntimeFailure&) {
    return fmt::format("<{} value>", typeName(v));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Python truthiness, equality and ordering.

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: case Kind::None: return false;
    case Kind::Bool: return v.b();
    case Kind::Int: return v.i() != 0;
    case Kind::Float: return v.f() != 0.0;
    case Kind::Str: return !v.s().empty();
    case Kind::List: return v.l().iterator || !v.l().items.empty();
    case Kind::Dict: return !v.d().items.empty();
    default: return true;
  }
}

bool numbersEqual(const Value& a, const Value& b) {
  if (a.is(Kind::Float) || b.is(Kind::Float)) {
    if (a.isIntLike() || b.isIntLike()) {  // exact int/float comparison, as Python does
      const Value& iv = a.isIntLike() ? a : b;
      const double fv = a.isIntLike() ? b.f() : a.f();
      if (!std::isfinite(fv) || fv != std::floor(fv) || std::fabs(fv) >= 9.2e18) return false;
      return static_cast<std::int64_t>(fv) == iv.i();
    }
    return a.f() == b.f();
  }
  return a.i() == b.i();
}

bool pyEquals(const Value& a, const Value& b) {
  if (a.isNumber() && b.isNumber()) return numbersEqual(a, b);
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Undefined: case Kind::None: return true;
    case Kind::Str: return a.s() == b.s();
    case Kind::List: {
      const List &x = a.l(), &y = b.l();
      if (x.iterator || y.iterator) return &x == &y;
      if (x.view || y.view) {  // keys and items compare as sets, values by identity
        if (&x == &y) return true;
        if (!x.view || !y.view || std::string_view(x.view) != y.view || std::string_view(x.view) == "dict_values" ||
            x.items.size() != y.items.size())
          return false;
        for (const Value& item : x.items)
          if (std::none_of(y.items.begin(), y.items.end(), [&](const Value& o) { return pyEquals(item, o); })) return false;
        return true;
      }
      if (x.tuple != y.tuple || x.items.size() != y.items.size()) return false;
      for (std::size_t k = 0; k < x.items.size(); ++k)
        if (!pyEquals(x.items[k], y.items[k])) return false;
      return true;
    }
    case Kind::Dict: {
      const Dict &x = a.d(), &y = b.d();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* other = y.find(k);
        if (!other || !pyEquals(v, *other)) return false;
      }
      return true;
    }
    case Kind::Namespace: return std::get<NsP>(a.v) == std::get<NsP>(b.v);
    case Kind::Function: return std::get<FnP>(a.v) == std::get<FnP>(b.v);
    case Kind::Loop: return std::get<LoopP>(a.v) == std::get<LoopP>(b.v);
    default: return false;
  }
}

// a < b for Python-orderable values; throws TypeError's message for others (`op` names the operator).
bool pyLess(const Value& a, const Value& b, const char* op) {
  if (a.is(Kind::Undefined)) failUndefined(a);
  if (b.is(Kind::Undefined)) failUndefined(b);
  if (a.isNumber() && b.isNumber()) {
    if (a.is(Kind::Float) || b.is(Kind::Float)) return a.f() < b.f();
    return a.i() < b.i();
  }
  if (a.is(Kind::Str) && b.is(Kind::Str)) return a.s() < b.s();  // UTF-8 byte order is code point order
  if (a.is(Kind::List) && b.is(Kind::List) && a.l().tuple == b.l().tuple && a.l().plain() && b.l().plain()) {
    const auto &x = a.l().items, &y = b.l().items;
    for (std::size_t k = 0; k < x.size() && k < y.size(); ++k)
      if (!pyEquals(x[k], y[k])) return pyLess(x[k], y[k], op);
    return x.size() < y.size();
  }
  fail("'{}' not supported between instances of '{}' and '{}'", op, typeName(a), typeName(b));
}

bool compareOp(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return pyEquals(a, b);
  if (op == "!=") return !pyEquals(a, b);
  if (op == "<") return pyLess(a, b, "<");
  if (op == ">") return pyLess(b, a, ">");
  if (op == "<=") return pyLess(a, b, "<=") || pyEquals(a, b);
  return pyLess(b, a, ">=") || pyEquals(a, b);  // ">="
}

// ---------------------------------------------------------------------------------------------------------------
// Lexer: jinja2's, with trim_blocks and lstrip_blocks on. Newlines are normalized to \n and one trailing newline
// is dropped (keep_trailing_newline=False) before lexing.

enum class Tok { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type;
  std::string text;  // data, name, string value, operator
  std::int64_t i = 0;
  double f = 0;
  int line = 1;
};

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

// ---------------------------------------------------------------------------------------------------------------
// AST.

enum class Op {
  Const, Name, List, Tuple, Dict, GetAttr, GetItem, Slice, Call, Filter, Test,
  Neg, Pos, Not, Add, Sub, Mul, Div, FloorDiv, Mod, Pow, Concat, Compare, And, Or, Cond
};

struct Expr;
using ExprP = std::unique_ptr<Expr>;

struct Expr {
  Op op;
  int line = 0;
  Value value;                                         // Const
  std::string name;                                    // Name; GetAttr attribute; Filter / Test name
  std::vector<ExprP> kids;                             // subject first, then operands / positional arguments
  std::vector<std::pair<std::string, ExprP>> kwargs;   // Call / Filter / Test keyword arguments
  std::vector<std::string> cmpOps;                     // Compare: ==, !=, <, <=, >, >=, in, notin
  bool negated = false;                                // Test: "is not"
  int depth = 1;
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

enum class StmtKind { Text, Print, If, For, Set, SetBlock, Macro, FilterBlock, With, Break, Continue };

struct Target {  // the left side of set / for: a name, names to unpack, or namespace.attr
  std::vector<std::string> names;
  std::string attr;
  bool tuple = false;
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;                                    // Text
  ExprP expr;                                          // Print / Set value / For iterable
  ExprP cond;                                          // For: the inline `if` filter
  Target target;                                       // For / Set / SetBlock
  std::vector<std::pair<ExprP, Body>> branches;        // If: (condition, body) for if and each elif
  Body body, elseBody;                                 // For body / else; SetBlock, Macro, FilterBlock, With body
  std::vector<ExprP> filters;                          // SetBlock / FilterBlock: Filter nodes without a subject
  std::string name;                                    // Macro name
  std::vector<std::pair<std::string, ExprP>> params;   // Macro parameters (default may be null); With bindings
};

constexpr int kMaxNesting = 200;     // nested expressions / blocks while parsing (about 100 parentheses)
constexpr int kMaxExprDepth = 400;   // AST depth of one expression (long operator and filter chains)

// ---------------------------------------------------------------------------------------------------------------
// Parser: jinja2's grammar and operator precedence (parser.py), for the tags chat templates use.

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Body parseTemplate() {
    Body body = subparse({});
    return body;
  }

 private:
  std::vector<Token> toks_;
  std::size_t pos_ = 0;
  int nesting_ = 0;
  int loops_ = 0;

  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.nesting_ > kMaxNesting) p.syntax(fmt::format("the template nests deeper than {} levels", kMaxNesting));
    }
    ~Nest() { --p.nesting_; }
  };

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(std::size_t ahead = 1) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
  Token next() {
    Token t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool isOp(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool isName(const char* name) const { return cur().type == Tok::Name && cur().text == name; }
  bool skipOp(const char* op) {
    if (!isOp(op)) return false;
    next();
    return true;
  }
  bool skipName(const char* name) {
    if (!isName(name)) return false;
    next();
    return true;
  }

  [[noreturn]] void syntax(std::string message) const { throw SyntaxFailure{std::move(message), cur().line}; }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Data: return "template data";
      case Tok::VarBegin: return "begin of print statement";
      case Tok::VarEnd: return "end of print statement";
      case Tok::BlockBegin: return "begin of statement block";
      case Tok::BlockEnd: return "end of statement block";
      case Tok::String: return "string";
      case Tok::Int: return "integer";
      case Tok::Float: return "float";
      case Tok::Eof: return "end of template";
      default: return t.text;
    }
  }
  void expectOp(const char* op) {
    if (!skipOp(op)) syntax(fmt::format("expected token '{}', got '{}'", op, describe(cur())));
  }
  void expectType(Tok type, const char* what) {
    if (cur().type != type) syntax(fmt::format("expected token '{}', got '{}'", what, describe(cur())));
    next();
  }
  std::string expectName() {
    if (cur().type != Tok::Name) syntax(fmt::format("expected token 'name', got '{}'", describe(cur())));
    return next().text;
  }
  void expectBlockEnd() { expectType(Tok::BlockEnd, "end of statement block"); }

  ExprP node(Op op, int line) {
    auto e = std::make_unique<Expr>();
    e->op = op;
    e->line = line;
    return e;
  }
  ExprP withKids(ExprP e) {
    for (const auto& k : e->kids)
      if (k) e->depth = std::max(e->depth, k->depth + 1);
    for (const auto& [n, k] : e->kwargs) e->depth = std::max(e->depth, k->depth + 1);
    if (e->depth > kMaxExprDepth) syntax(fmt::format("expression nests deeper than {} levels", kMaxExprDepth));
    return e;
  }
  ExprP binary(Op op, ExprP a, ExprP b, int line) {
    ExprP e = node(op, line);
    e->kids.push_back(std::move(a));
    e->kids.push_back(std::move(b));
    return withKids(std::move(e));
  }

  // ---- statements ----

  Body subparse(const std::vector<std::string>& endTags) {
    Nest nest(*this);
    Body body;
    for (;;) {
      const Token& t = cur();
      if (t.type == Tok::Eof) {
        if (!endTags.empty()) syntax(unexpectedEnd(endTags));
        return body;
      }
      if (t.type == Tok::Data) {
        auto st = std::make_unique<Stmt>();
        st->kind = StmtKind::Text;
        st->line = t.line;
        st->text = next().text;
        body.push_back(std::move(st));
      } else if (t.type == Tok::VarBegin) {
        auto st = std::make_unique<Stmt>();
        st->kind = StmtKind::Print;
        st->line = next().line;
        st->expr = parseTuple(true);
        expectType(Tok::VarEnd, "end of print statement");
        body.push_back(std::move(st));
      } else if (t.type == Tok::BlockBegin) {
        next();
        if (cur().type == Tok::Name && std::find(endTags.begin(), endTags.end(), cur().text) != endTags.end()) return body;
        body.push_back(parseStatement(endTags));
      } else {
        syntax(fmt::format("unexpected '{}'", describe(t)));
      }
    }
  }

  static std::string tagList(const std::vector<std::string>& tags) {
    std::string s;
    for (std::size_t k = 0; k < tags.size(); ++k) s += (k ? " or '" : "'") + tags[k] + "'";
    return s;
  }
  std::string unexpectedEnd(const std::vector<std::string>& endTags) const {
    return "Unexpected end of template. Jinja was looking for the following tags: " + tagList(endTags) + ".";
  }

  std::unique_ptr<Stmt> parseStatement(const std::vector<std::string>& endTags) {
    if (cur().type != Tok::Name) syntax("tag name expected");
    const std::string tag = cur().text;
    const int line = cur().line;
    if (tag == "for") return parseFor();
    if (tag == "if") return parseIf();
    if (tag == "set") return parseSet();
    if (tag == "macro") return parseMacro();
    if (tag == "filter") return parseFilterBlock();
    if (tag == "with") return parseWith();
    if ((tag == "break" || tag == "continue") && loops_ > 0) {
      next();
      expectBlockEnd();
      auto st = std::make_unique<Stmt>();
      st->kind = tag == "break" ? StmtKind::Break : StmtKind::Continue;
      st->line = line;
      return st;
    }
    if (tag == "include" || tag == "import" || tag == "from" || tag == "extends" || tag == "block")
      throw UnsupportedFailure{fmt::format("'{}' is not supported (templates cannot load other files)", tag), line};
    if (tag == "call") throw UnsupportedFailure{"'call' blocks are not supported", line};
    std::string message = fmt::format("Encountered unknown tag '{}'.", tag);
    if (!endTags.empty()) message += " Jinja was looking for the following tags: " + tagList(endTags) + ".";
    syntax(message);
  }

  std::unique_ptr<Stmt> newStmt(StmtKind kind) {
    auto st = std::make_unique<Stmt>();
    st->kind = kind;
    st->line = next().line;  // the tag name
    return st;
  }

  // `set`/`for` targets: a name, names to unpack (optionally in parentheses), or namespace.attr for set.
  Target parseTarget(bool withNamespace, const char* endName) {
    Target t;
    if (withNamespace && cur().type == Tok::Name && peek().type == Tok::Op && peek().text == ".") {
      t.names.push_back(next().text);
      next();
      t.attr = expectName();
      return t;
    }
    const bool paren = skipOp("(");
    for (;;) {
      t.names.push_back(expectName());
      if (!skipOp(",")) break;
      t.tuple = true;
      if ((paren && isOp(")")) || (endName && isName(endName)) || isOp("=") || cur().type == Tok::BlockEnd) break;
    }
    if (paren) {
      expectOp(")");
      t.tuple = t.tuple || t.names.size() > 1;
    }
    return t;
  }

  std::unique_ptr<Stmt> parseFor() {
    auto st = newStmt(StmtKind::For);
    st->target = parseTarget(false, "in");
    if (!skipName("in")) syntax(fmt::format("expected token 'in', got '{}'", describe(cur())));
    st->expr = parseTuple(false, "recursive");
    if (skipName("if")) st->cond = parseExpression(true);
    if (isName("recursive")) throw UnsupportedFailure{"recursive for loops are not supported", cur().line};
    expectBlockEnd();
    ++loops_;
    st->body = subparse({"endfor", "else"});
    --loops_;
    if (next().text == "else") {
      expectBlockEnd();
      st->elseBody = subparse({"endfor"});
      next();
    }
    expectBlockEnd();
    return st;
  }

  std::unique_ptr<Stmt> parseIf() {
    auto st = newStmt(StmtKind::If);
    for (;;) {
      ExprP cond = parseTuple(false);
      expectBlockEnd();
      Body body = subparse({"elif", "else", "endif"});
      st->branches.emplace_back(std::move(cond), std::move(body));
      const std::string tag = next().text;
      if (tag == "elif") continue;
      if (tag == "else") {
        expectBlockEnd();
        st->elseBody = subparse({"endif"});
        next();
      }
      break;
    }
    expectBlockEnd();
    return st;
  }

  std::unique_ptr<Stmt> parseSet() {
    auto st = newStmt(StmtKind::Set);
    st->target = parseTarget(true, nullptr);
    if (skipOp("=")) {
      st->expr = parseTuple(true);
      expectBlockEnd();
      return st;
    }
    st->kind = StmtKind::SetBlock;
    if (st->target.tuple || !st->target.attr.empty()) syntax("a block set assigns to one name");
    st->filters = parseFilterChain();
    expectBlockEnd();
    st->body = subparse({"endset"});
    next();
    expectBlockEnd();
    return st;
  }

  std::vector<ExprP> parseFilterChain() {
    std::vector<ExprP> chain;
    while (skipOp("|")) chain.push_back(parseFilter(nullptr));
    return chain;
  }

  std::unique_ptr<Stmt> parseFilterBlock() {
    auto st = newStmt(StmtKind::FilterBlock);
    st->filters.push_back(parseFilter(nullptr));
    for (ExprP& f : parseFilterChain()) st->filters.push_back(std::move(f));
    expectBlockEnd();
    st->body = subparse({"endfilter"});
    next();
    expectBlockEnd();
    return st;
  }

  std::unique_ptr<Stmt> parseMacro() {
    auto st = newStmt(StmtKind::Macro);
    st->name = expectName();
    expectOp("(");
    while (!isOp(")")) {
      if (!st->params.empty()) expectOp(",");
      if (isOp(")")) break;
      std::string param = expectName();
      ExprP def = skipOp("=") ? parseExpression(true) : nullptr;
      st->params.emplace_back(std::move(param), std::move(def));
    }
    expectOp(")");
    expectBlockEnd();
    const int loops = loops_;
    loops_ = 0;
    st->body = subparse({"endmacro"});
    loops_ = loops;
    next();
    expectBlockEnd();
    return st;
  }

  std::unique_ptr<Stmt> parseWith() {
    auto st = newStmt(StmtKind::With);
    while (cur().type != Tok::BlockEnd) {
      if (!st->params.empty()) expectOp(",");
      std::string name = expectName();
      expectOp("=");
      st->params.emplace_back(std::move(name), parseExpression(true));
    }
    expectBlockEnd();
    st->body = subparse({"endwith"});
    next();
    expectBlockEnd();
    return st;
  }

  // ---- expressions ----

  bool isTupleEnd(const char* extraEnd) const {
    if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || isOp(")")) return true;
    return extraEnd && isName(extraEnd);
  }

  // Comma-separated expressions; a tuple when there is a comma (`{{ 1, 2 }}`, `set a, b = 1, 2`).
  ExprP parseTuple(bool withCondexpr, const char* extraEnd = nullptr, bool explicitParens = false) {
    const int line = cur().line;
    std::vector<ExprP> items;
    bool isTuple = false;
    for (;;) {
      if (!items.empty()) expectOp(",");
      if (isTupleEnd(extraEnd)) break;
      items.push_back(parseExpression(withCondexpr));
      if (isOp(",")) isTuple = true;
      else break;
    }
    if (!isTuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicitParens) syntax(fmt::format("Expected an expression, got '{}'", describe(cur())));
    }
    ExprP e = node(Op::Tuple, line);
    e->kids = std::move(items);
    return withKids(std::move(e));
  }

  ExprP parseExpression(bool withCondexpr) {
    Nest nest(*this);
    return withCondexpr ? parseCondexpr() : parseOr();
  }

  ExprP parseCondexpr() {
    Nest nest(*this);  // `a if b else c if d else ...` recurses here
    ExprP expr = parseOr();
    while (isName("if")) {
      const int line = next().line;
      ExprP test = parseOr();
      ExprP otherwise = skipName("else") ? parseCondexpr() : nullptr;
      ExprP e = node(Op::Cond, line);
      e->kids.push_back(std::move(test));
      e->kids.push_back(std::move(expr));
      e->kids.push_back(std::move(otherwise));
      expr = withKids(std::move(e));
    }
    return expr;
  }

  ExprP parseOr() {
    ExprP left = parseAnd();
    while (isName("or")) {
      const int line = next().line;
      left = binary(Op::Or, std::move(left), parseAnd(), line);
    }
    return left;
  }

  ExprP parseAnd() {
    ExprP left = parseNot();
    while (isName("and")) {
      const int line = next().line;
      left = binary(Op::And, std::move(left), parseNot(), line);
    }
    return left;
  }

  ExprP parseNot() {
    if (isName("not")) {
      Nest nest(*this);
      const int line = next().line;
      ExprP e = node(Op::Not, line);
      e->kids.push_back(parseNot());
      return withKids(std::move(e));
    }
    return parseCompare();
  }

  ExprP parseCompare() {
    const int line = cur().line;
    ExprP first = parseMath1();
    ExprP cmp;
    for (;;) {
      std::string op;
      if (cur().type == Tok::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                    cur().text == "<=" || cur().text == ">" || cur().text == ">="))
        op = next().text;
      else if (skipName("in")) op = "in";
      else if (isName("not") && peek().type == Tok::Name && peek().text == "in") next(), next(), op = "notin";
      else break;
      if (!cmp) {
        cmp = node(Op::Compare, line);
        cmp->kids.push_back(std::move(first));
      }
      cmp->cmpOps.push_back(op);
      cmp->kids.push_back(parseMath1());
    }
    return cmp ? withKids(std::move(cmp)) : std::move(first);
  }

  ExprP parseMath1() {
    ExprP left = parseConcat();
    while (isOp("+") || isOp("-")) {
      const Token t = next();
      left = binary(t.text == "+" ? Op::Add : Op::Sub, std::move(left), parseConcat(), t.line);
    }
    return left;
  }

  ExprP parseConcat() {
    const int line = cur().line;
    ExprP first = parseMath2();
    if (!isOp("~")) return first;
    ExprP e = node(Op::Concat, line);
    e->kids.push_back(std::move(first));
    while (skipOp("~")) e->kids.push_back(parseMath2());
    return withKids(std::move(e));
  }

  ExprP parseMath2() {
    ExprP left = parsePow();
    while (isOp("*") || isOp("/") || isOp("//") || isOp("%")) {
      const Token t = next();
      const Op op = t.text == "*" ? Op::Mul : t.text == "/" ? Op::Div : t.text == "//" ? Op::FloorDiv : Op::Mod;
      left = binary(op, std::move(left), parsePow(), t.line);
    }
    return left;
  }

  ExprP parsePow() {
    ExprP left = parseUnary(true);
    while (isOp("**")) {
      const int line = next().line;
      left = binary(Op::Pow, std::move(left), parseUnary(true), line);
    }
    return left;
  }

  ExprP parseUnary(bool withFilter) {
    Nest nest(*this);
    ExprP e;
    if (isOp("-") || isOp("+")) {
      const Token t = next();
      e = node(t.text == "-" ? Op::Neg : Op::Pos, t.line);
      e->kids.push_back(parseUnary(false));
      e = withKids(std::move(e));
    } else {
      e = parsePrimary();
    }
    e = parsePostfix(std::move(e));
    return withFilter ? parseFilterExpr(std::move(e)) : std::move(e);
  }

  ExprP constant(Value v, int line) {
    ExprP e = node(Op::Const, line);
    e->value = std::move(v);
    return e;
  }

  ExprP parsePrimary() {
    const Token& t = cur();
    const int line = t.line;
    switch (t.type) {
      case Tok::Name: {
        const std::string n = next().text;
        if (n == "true" || n == "True") return constant(Value::boolean(true), line);
        if (n == "false" || n == "False") return constant(Value::boolean(false), line);
        if (n == "none" || n == "None") return constant(Value::none(), line);
        ExprP e = node(Op::Name, line);
        e->name = n;
        return e;
      }
      case Tok::String: {
        std::string text = next().text;
        while (cur().type == Tok::String) text += next().text;  // adjacent literals concatenate
        return constant(Value::str(std::move(text)), line);
      }
      case Tok::Int: return constant(Value::integer(next().i), line);
      case Tok::Float: return constant(Value::real(next().f), line);
      case Tok::Op:
        if (skipOp("(")) {
          ExprP e = parseTuple(true, nullptr, true);
          expectOp(")");
          return e;
        }
        if (isOp("[")) return parseList();
        if (isOp("{")) return parseDict();
        break;
      default: break;
    }
    syntax(fmt::format("unexpected '{}'", describe(t)));
  }

  ExprP parseList() {
    ExprP e = node(Op::List, next().line);
    while (!isOp("]")) {
      if (!e->kids.empty()) expectOp(",");
      if (isOp("]")) break;
      e->kids.push_back(parseExpression(true));
    }
    expectOp("]");
    return withKids(std::move(e));
  }

  ExprP parseDict() {
    ExprP e = node(Op::Dict, next().line);
    while (!isOp("}")) {
      if (!e->kids.empty()) expectOp(",");
      if (isOp("}")) break;
      e->kids.push_back(parseExpression(true));
      expectOp(":");
      e->kids.push_back(parseExpression(true));
    }
    expectOp("}");
    return withKids(std::move(e));
  }

  ExprP parsePostfix(ExprP e) {
    for (;;) {
      if (isOp(".") || isOp("[")) e = parseSubscript(std::move(e));
      else if (isOp("(")) e = parseCall(std::move(e));
      else return e;
    }
  }

  ExprP parseFilterExpr(ExprP e) {
    for (;;) {
      if (isOp("|")) {
        next();
        e = parseFilter(std::move(e));
      } else if (isName("is")) {
        e = parseTest(std::move(e));
      } else if (isOp("(")) {
        e = parseCall(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprP parseSubscript(ExprP subject) {
    const Token t = next();
    if (t.text == ".") {
      if (cur().type == Tok::Name) {
        ExprP e = node(Op::GetAttr, t.line);
        e->name = next().text;
        e->kids.push_back(std::move(subject));
        return withKids(std::move(e));
      }
      if (cur().type != Tok::Int) syntax("expected name or number");
      ExprP e = node(Op::GetItem, t.line);
      e->kids.push_back(std::move(subject));
      e->kids.push_back(constant(Value::integer(next().i), t.line));
      return withKids(std::move(e));
    }
    std::vector<ExprP> args;
    while (!isOp("]")) {
      if (!args.empty()) expectOp(",");
      args.push_back(parseSubscribed());
    }
    expectOp("]");
    ExprP e = node(Op::GetItem, t.line);
    e->kids.push_back(std::move(subject));
    if (args.size() == 1) {
      e->kids.push_back(std::move(args[0]));
    } else {
      ExprP tuple = node(Op::Tuple, t.line);
      tuple->kids = std::move(args);
      e->kids.push_back(withKids(std::move(tuple)));
    }
    return withKids(std::move(e));
  }

  // An index or a slice [start:stop:step] inside brackets.
  ExprP parseSubscribed() {
    const int line = cur().line;
    ExprP start;
    if (!isOp(":")) {
      start = parseExpression(true);
      if (!isOp(":")) return start;
    }
    next();
    ExprP e = node(Op::Slice, line);
    e->kids.push_back(std::move(start));
    e->kids.push_back(isOp(":") || isOp("]") || isOp(",") ? nullptr : parseExpression(true));
    ExprP step;
    if (skipOp(":") && !isOp("]") && !isOp(",")) step = parseExpression(true);
    e->kids.push_back(std::move(step));
    return withKids(std::move(e));
  }

  void parseCallArgs(Expr& e) {
    expectOp("(");
    bool needComma = false;
    while (!isOp(")")) {
      if (needComma) {
        expectOp(",");
        if (isOp(")")) break;
      }
      if (isOp("*") || isOp("**")) syntax("*args and **kwargs in calls are not supported");
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parseExpression(true));
      } else {
        if (!e.kwargs.empty()) syntax("positional argument after keyword argument");
        e.kids.push_back(parseExpression(true));
      }
      needComma = true;
    }
    expectOp(")");
  }

  ExprP parseCall(ExprP callee) {
    ExprP e = node(Op::Call, cur().line);
    e->kids.push_back(std::move(callee));
    parseCallArgs(*e);
    return withKids(std::move(e));
  }

  ExprP parseFilter(ExprP subject) {
    ExprP e = node(Op::Filter, cur().line);
    e->name = expectName();
    while (skipOp(".")) e->name += "." + expectName();
    e->kids.push_back(std::move(subject));  // null for filter blocks: the body's output is the subject
    if (isOp("(")) parseCallArgs(*e);
    return withKids(std::move(e));
  }

  ExprP parseTest(ExprP subject) {
    ExprP e = node(Op::Test, next().line);
    e->negated = skipName("not");
    e->name = expectName();
    while (skipOp(".")) e->name += "." + expectName();
    e->kids.push_back(std::move(subject));
    if (isOp("(")) {
      parseCallArgs(*e);
    } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                cur().type == Tok::Float || isOp("(") || isOp("[") || isOp("{")) &&
               !isName("else") && !isName("or") && !isName("and")) {
      if (isName("is")) syntax("You cannot chain multiple tests with is");
      e->kids.push_back(parsePostfix(parsePrimary()));
    }
    return withKids(std::move(e));
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Scopes: the globals, the template's top level, one scope per loop iteration / macro call / with block. A set
// writes to the innermost scope, so values set inside a loop do not outlive the iteration (as in jinja2).

struct Frame {
  std::vector<std::pair<std::string, Value>> vars;
  std::shared_ptr<Frame> parent;

  Value* find(const std::string& name) {
    for (Frame* f = this; f; f = f->parent.get())
      for (auto& [k, v] : f->vars)
        if (k == name) return &v;
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    for (auto& [k, v] : vars)
      if (k == name) {
        v = std::move(value);
        return;
      }
    vars.emplace_back(name, std::move(value));
  }
};
using FrameP = std::shared_ptr<Frame>;

FrameP childFrame(const FrameP& parent) {
  auto f = std::make_shared<Frame>();
  f->parent = parent;
  return f;
}

enum class Flow { Normal, Break, Continue };

constexpr int kMaxValueDepth = 200;            // nesting of lists / dicts
constexpr std::size_t kMaxItems = 1'000'000;   // elements of one list or dict
constexpr std::int64_t kMaxRange = 100'000;    // as the jinja2 sandbox's MAX_RANGE
constexpr int kMaxRunDepth = 1000;             // nested evaluation: expressions, blocks and macro calls together

// Containers and namespace attributes hold data only: no namespaces, loops or functions (these could form
// cycles or unbounded chains), and no deeper than kMaxValueDepth, so printing, comparing and freeing values
// never recurses without bound.
void checkStorable(const Value& v) {
  if (v.is(Kind::Namespace) || v.is(Kind::Loop) || v.is(Kind::Function))
    fail("a {} cannot be stored inside a list, dict or namespace here", typeName(v));
}

Value makeList(std::vector<Value> items, bool tuple = false) {
  if (items.size() > kMaxItems) fail("a list would hold more than {} items", kMaxItems);
  for (const Value& x : items) {
    checkStorable(x);
    if (valueDepth(x) >= kMaxValueDepth) fail("a value nests deeper than {} levels", kMaxValueDepth);
  }
  return Value::list(std::move(items), tuple);
}

void dictSet(Dict& d, Value key, Value value) {
  checkStorable(key);
  checkStorable(value);
  if (key.is(Kind::List) && !key.l().tuple) fail("unhashable type: 'list'");
  if (key.is(Kind::Dict)) fail("unhashable type: 'dict'");
  if (d.items.size() >= kMaxItems) fail("a dict would hold more than {} items", kMaxItems);
  d.set(std::move(key), std::move(value));
}

Value makeDict(Dict d) {
  for (const auto& [k, v] : d.items)
    if (std::max(valueDepth(k), valueDepth(v)) >= kMaxValueDepth) fail("a value nests deeper than {} levels", kMaxValueDepth);
  return Value::dict(std::move(d));
}

std::string attrMissing(const Value& obj, const std::string& name) {
  return fmt::format("{} has no attribute {}", strRepr(objectTypeRepr(obj)), strRepr(name));
}
std::string elementMissing(const Value& obj, const Value& key) {
  return fmt::format("{} has no element {}", objectTypeRepr(obj), shortRepr(key));
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

struct TemplateData;

class Interp {
 public:
  Interp(const TemplateData& tmpl, const RenderOptions& options) : tmpl_(tmpl), options_(options) {}

  std::string render(const nlohmann::ordered_json& context);

  int line() const { return line_; }
  void tick(std::uint64_t n = 1) {
    steps_ += n;
    if (steps_ > options_.limits.maxSteps)
      fail("the template ran more than {} steps (a runaway loop?)", options_.limits.maxSteps);
  }
  // Accounts for building a value of `bytes` bytes: steps for the copying and the size limit.
  void charge(std::size_t bytes) {
    if (bytes > options_.limits.maxOutputBytes)
      fail("a value would exceed {} bytes", options_.limits.maxOutputBytes);
    tick(bytes / 64 + 1);
  }
  // Accounts for a value growing to `total` bytes by `added` bytes (in a loop that builds it).
  void grow(std::size_t total, std::size_t added) {
    if (total > options_.limits.maxOutputBytes) fail("a value would exceed {} bytes", options_.limits.maxOutputBytes);
    tick(added / 64 + 1);
  }
  // Operations that scan a value cost steps in proportion to its size.
  void scan(const Value& v) {
    if (v.is(Kind::Str)) tick(v.s().size() / 64);
    else if (v.is(Kind::List)) tick(v.l().items.size() / 16);
    else if (v.is(Kind::Dict)) tick(v.d().items.size() / 8);
  }
  std::size_t maxBytes() const { return options_.limits.maxOutputBytes; }
  const RenderOptions& options() const { return options_; }

  Value eval(const Expr& e, const FrameP& frame);
  Value call(const Value& callee, Args& args);
  Value filter(const std::string& name, Value subject, Args& args);
  bool test(const std::string& name, const Value& subject, Args& args);
  Value callMacro(const Stmt& macro, Frame* defined, Args& args);

 private:
  const TemplateData& tmpl_;
  const RenderOptions& options_;
  std::string out_;
  std::uint64_t steps_ = 0;
  std::size_t written_ = 0;
  int line_ = 0;
  int callDepth_ = 0;

  void emit(std::string_view text) {
    written_ += text.size();
    if (written_ > options_.limits.maxOutputBytes)
      fail("the output would exceed {} bytes", options_.limits.maxOutputBytes);
    tick(text.size() / 64);
    out_ += text;
  }
  std::string capture(const Body& body, const FrameP& frame, Flow* flow = nullptr);
  Flow exec(const Body& body, const FrameP& frame);
  Flow execStmt(const Stmt& st, const FrameP& frame);
  Flow execFor(const Stmt& st, const FrameP& frame);
  void assign(const Target& target, Value value, Frame& frame);
  Value applyFilters(const std::vector<ExprP>& filters, Value subject, const FrameP& frame);
  Args evalArgs(const Expr& e, std::size_t firstArg, const FrameP& frame);
  Value evalCompare(const Expr& e, const FrameP& frame);
  Value evalSubscript(const Expr& e, const FrameP& frame);
  Value evalName(const Expr& e, const FrameP& frame);
  Value evalList(const Expr& e, const FrameP& frame);
  Value evalDict(const Expr& e, const FrameP& frame);
  Value evalApply(const Expr& e, const FrameP& frame);
  Value evalLogic(const Expr& e, const FrameP& frame);
  Value evalConcat(const Expr& e, const FrameP& frame);
  Value evalArith(const Expr& e, const FrameP& frame);

  // Bounds the C++ recursion of evaluation (expressions within statements within macro calls).
  struct Deeper {
    Interp& in;
    explicit Deeper(Interp& i) : in(i) {
      if (++in.depth_ > kMaxRunDepth) fail("the template nests deeper than {} levels while rendering", kMaxRunDepth);
    }
    ~Deeper() { --in.depth_; }
    Deeper(const Deeper&) = delete;
    Deeper& operator=(const Deeper&) = delete;
  };
  int depth_ = 0;
};

std::vector<Value> iterate(const Value& v);
Value getAttr(Interp& in, const Value& obj, const std::string& name);
Value getItem(Interp& in, const Value& obj, const Value& key);
Value sliceValue(Interp& in, const Value& obj, const Value& start, const Value& stop, const Value& step);
Value binaryOp(Interp& in, Op op, const Value& a, const Value& b);
Value unaryOp(Op op, const Value& a);
bool contains(const Value& container, const Value& item);

// ---------------------------------------------------------------------------------------------------------------
// Statements.

Flow Interp::exec(const Body& body, const FrameP& frame) {
  for (const auto& st : body) {
    const Flow flow = execStmt(*st, frame);
    if (flow != Flow::Normal) return flow;
  }
  return Flow::Normal;
}

// `flow`: how the body ended. jinja2 compiles a block set and a filter block inline, so a break or continue in
// one leaves the enclosing loop's iteration and what the block wrote is dropped; a macro's body is a function.
std::string Interp::capture(const Body& body, const FrameP& frame, Flow* flow) {
  std::string saved;
  saved.swap(out_);
  const Flow ended = exec(body, frame);
  if (flow) *flow = ended;
  std::string captured;
  captured.swap(out_);
  out_.swap(saved);
  return captured;
}

Flow Interp::execStmt(const Stmt& st, const FrameP& frame) {
  tick();
  line_ = st.line;
  Deeper deeper(*this);
  switch (st.kind) {
    case StmtKind::Text: emit(st.text); return Flow::Normal;
    case StmtKind::Print: {
      const Value v = eval(*st.expr, frame);
      emit(v.is(Kind::Str) ? v.s() : pyStr(v, maxBytes()));
      return Flow::Normal;
    }
    case StmtKind::If:
      for (const auto& [cond, body] : st.branches)
        if (truthy(eval(*cond, frame))) return exec(body, frame);
      return exec(st.elseBody, frame);
    case StmtKind::For: return execFor(st, frame);
    case StmtKind::Set: assign(st.target, eval(*st.expr, frame), *frame); return Flow::Normal;
    case StmtKind::SetBlock: {
      Flow flow = Flow::Normal;
      Value body = Value::str(capture(st.body, frame, &flow));
      if (flow != Flow::Normal) return flow;
      assign(st.target, applyFilters(st.filters, std::move(body), frame), *frame);
      return Flow::Normal;
    }
    case StmtKind::FilterBlock: {
      Flow flow = Flow::Normal;
      std::string body = capture(st.body, frame, &flow);
      if (flow != Flow::Normal) return flow;
      const Value v = applyFilters(st.filters, Value::str(std::move(body)), frame);
      emit(pyStr(v, maxBytes()));
      return Flow::Normal;
    }
    case StmtKind::Macro: {
      const Stmt* macro = &st;
      Frame* defined = frame.get();
      frame->set(st.name, makeFunction(st.name, [macro, defined](Interp& in, Args& args) {
                   return in.callMacro(*macro, defined, args);
                 }));
      return Flow::Normal;
    }
    case StmtKind::With: {
      FrameP inner = childFrame(frame);
      for (const auto& [name, expr] : st.params) inner->set(name, eval(*expr, frame));
      return exec(st.body, inner);
    }
    case StmtKind::Break: return Flow::Break;
    case StmtKind::Continue: return Flow::Continue;
  }
  return Flow::Normal;
}

void bindTarget(const Target& target, const Value& item, Frame& frame) {
  if (!target.tuple) {
    frame.set(target.names[0], item);
    return;
  }
  const std::vector<Value> parts = iterate(item);
  const std::size_t want = target.names.size();
  if (parts.size() > want) fail("too many values to unpack (expected {})", want);
  if (parts.size() < want) fail("not enough values to unpack (expected {}, got {})", want, parts.size());
  for (std::size_t k = 0; k < want; ++k) frame.set(target.names[k], parts[k]);
}

Flow Interp::execFor(const Stmt& st, const FrameP& frame) {
  std::vector<Value> items = iterate(eval(*st.expr, frame));
  tick(items.size() / 16);
  if (st.cond) {  // the inline `if` filters before the loop counts (loop.length is the filtered length)
    std::vector<Value> kept;
    for (Value& item : items) {
      FrameP probe = childFrame(frame);
      bindTarget(st.target, item, *probe);
      if (truthy(eval(*st.cond, probe))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  auto shared = std::make_shared<const std::vector<Value>>(std::move(items));
  auto lastChanged = std::make_shared<std::optional<std::vector<Value>>>();
  bool completed = false;
  for (std::size_t k = 0; k < shared->size(); ++k) {
    tick();
    line_ = st.line;
    FrameP iteration = childFrame(frame);
    bindTarget(st.target, (*shared)[k], *iteration);
    auto loop = std::make_shared<Loop>();
    loop->index0 = static_cast<std::int64_t>(k);
    loop->items = shared;
    loop->lastChanged = lastChanged;
    iteration->set("loop", Value::fromData(LoopP(std::move(loop))));
    const Flow flow = exec(st.body, iteration);
    if (flow == Flow::Break) break;
    if (flow == Flow::Normal) completed = true;
  }
  // jinja2 runs the else block unless an iteration reached the end of the body: after an empty loop, but also
  // after a break or continue in every iteration before any ran to its end (a flag the loop body clears last).
  if (!completed) return exec(st.elseBody, childFrame(frame));
  return Flow::Normal;
}

void Interp::assign(const Target& target, Value value, Frame& frame) {
  if (!target.attr.empty()) {
    Value* ns = frame.find(target.names[0]);
    if (!ns || !ns->is(Kind::Namespace)) fail("cannot assign attribute on non-namespace object");
    checkStorable(value);
    if (valueDepth(value) >= kMaxValueDepth) fail("a value nests deeper than {} levels", kMaxValueDepth);
    std::get<NsP>(ns->v)->set(target.attr, std::move(value));
    return;
  }
  bindTarget(target, value, frame);
}

Value Interp::applyFilters(const std::vector<ExprP>& filters, Value subject, const FrameP& frame) {
  for (const ExprP& f : filters) {
    Args args = evalArgs(*f, 1, frame);
    line_ = f->line;
    subject = filter(f->name, std::move(subject), args);
  }
  return subject;
}

Value Interp::callMacro(const Stmt& macro, Frame* defined, Args& args) {
  if (callDepth_ >= options_.limits.maxCallDepth)
    fail("macro calls nest deeper than {} levels", options_.limits.maxCallDepth);
  const std::size_t n = macro.params.size();
  if (args.pos.size() > n) fail("macro {} takes not more than {} argument(s)", strRepr(macro.name), n);
  FrameP frame = childFrame(FrameP(FrameP(), defined));  // non-owning: the defining scope outlives the call
  for (std::size_t k = 0; k < n; ++k) {
    const auto& name = macro.params[k].first;
    const auto& def = macro.params[k].second;
    const auto kw = std::find_if(args.kw.begin(), args.kw.end(), [&](const auto& p) { return p.first == name; });
    if (k < args.pos.size() && kw != args.kw.end()) fail("macro {} got multiple values for argument {}", strRepr(macro.name), strRepr(name));
    if (k < args.pos.size()) frame->set(name, args.pos[k]);
    else if (kw != args.kw.end()) frame->set(name, kw->second);
    else if (def) frame->set(name, eval(*def, frame));
    else frame->set(name, Value::undefined(fmt::format("parameter {} was not provided", strRepr(name))));
  }
  for (const auto& kv : args.kw)
    if (std::none_of(macro.params.begin(), macro.params.end(), [&](const auto& p) { return p.first == kv.first; }))
      fail("macro {} takes no keyword argument {}", strRepr(macro.name), strRepr(kv.first));
  ++callDepth_;
  struct Leave {
    int& depth;
    ~Leave() { --depth; }
  } leave{callDepth_};
  return Value::str(capture(macro.body, frame));
}

// ---------------------------------------------------------------------------------------------------------------
// Expressions.

Args Interp::evalArgs(const Expr& e, std::size_t firstArg, const FrameP& frame) {
  Args args;
  for (std::size_t k = firstArg; k < e.kids.size(); ++k) args.pos.push_back(eval(*e.kids[k], frame));
  for (const auto& [key, expr] : e.kwargs) args.kw.emplace_back(key, eval(*expr, frame));
  return args;
}

Value Interp::call(const Value& callee, Args& args) {
  if (callee.is(Kind::Undefined)) failUndefined(callee);
  if (!callee.is(Kind::Function)) fail("{} object is not callable", strRepr(typeName(callee)));
  return std::get<FnP>(callee.v)->call(*this, args);
}

Value Interp::evalCompare(const Expr& e, const FrameP& frame) {
  Value left = eval(*e.kids[0], frame);
  for (std::size_t k = 0; k < e.cmpOps.size(); ++k) {
    Value right = eval(*e.kids[k + 1], frame);
    line_ = e.line;
    scan(left);
    scan(right);
    const std::string& op = e.cmpOps[k];
    const bool ok = op == "in" ? contains(right, left) : op == "notin" ? !contains(right, left) : compareOp(op, left, right);
    if (!ok) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interp::evalSubscript(const Expr& e, const FrameP& frame) {
  const Value obj = eval(*e.kids[0], frame);
  const Expr& key = *e.kids[1];
  if (key.op == Op::Slice) {
    Value parts[3];
    for (int k = 0; k < 3; ++k)
      parts[k] = key.kids[static_cast<std::size_t>(k)] ? eval(*key.kids[static_cast<std::size_t>(k)], frame) : Value::none();
    line_ = e.line;
    return sliceValue(*this, obj, parts[0], parts[1], parts[2]);
  }
  const Value k = eval(key, frame);
  line_ = e.line;
  return getItem(*this, obj, k);
}

// Each case in its own function keeps eval's stack frame small: eval recurses once per AST level.
Value Interp::evalName(const Expr& e, const FrameP& frame) {
  const Value* v = frame->find(e.name);
  return v ? *v : Value::undefined(fmt::format("{} is undefined", strRepr(e.name)));
}

Value Interp::evalList(const Expr& e, const FrameP& frame) {
  std::vector<Value> items;
  for (const ExprP& k : e.kids) items.push_back(eval(*k, frame));
  return makeList(std::move(items), e.op == Op::Tuple);
}

Value Interp::evalDict(const Expr& e, const FrameP& frame) {
  Dict d;
  for (std::size_t k = 0; k + 1 < e.kids.size(); k += 2) {
    Value key = eval(*e.kids[k], frame);
    dictSet(d, std::move(key), eval(*e.kids[k + 1], frame));
  }
  return makeDict(std::move(d));
}

Value Interp::evalApply(const Expr& e, const FrameP& frame) {  // Call, Filter, Test, GetAttr
  Value subject = eval(*e.kids[0], frame);
  if (e.op == Op::GetAttr) {
    line_ = e.line;
    return getAttr(*this, subject, e.name);
  }
  Args args = evalArgs(e, 1, frame);
  line_ = e.line;
  if (e.op == Op::Call) return call(subject, args);
  if (e.op == Op::Filter) return filter(e.name, std::move(subject), args);
  return Value::boolean(test(e.name, subject, args) != e.negated);
}

Value Interp::evalLogic(const Expr& e, const FrameP& frame) {  // And, Or, Cond, Not
  if (e.op == Op::Not) return Value::boolean(!truthy(eval(*e.kids[0], frame)));
  if (e.op == Op::Cond) {
    if (truthy(eval(*e.kids[0], frame))) return eval(*e.kids[1], frame);
    if (e.kids[2]) return eval(*e.kids[2], frame);
    return Value::undefined(fmt::format("the inline if-expression on line {} evaluated to false and no else section was defined.", e.line));
  }
  Value a = eval(*e.kids[0], frame);
  if (truthy(a) == (e.op == Op::Or)) return a;
  return eval(*e.kids[1], frame);
}

Value Interp::evalConcat(const Expr& e, const FrameP& frame) {
  std::string s;
  for (const ExprP& k : e.kids) {
    const Value v = eval(*k, frame);
    const std::size_t before = s.size();
    if (v.is(Kind::Str)) s += v.s();
    else appendPy(s, v, false, maxBytes());
    grow(s.size(), s.size() - before);
  }
  return Value::str(std::move(s));
}

Value Interp::evalArith(const Expr& e, const FrameP& frame) {
  const Value a = eval(*e.kids[0], frame);
  if (e.op == Op::Neg || e.op == Op::Pos) {
    line_ = e.line;
    return unaryOp(e.op, a);
  }
  const Value b = eval(*e.kids[1], frame);
  line_ = e.line;
  return binaryOp(*this, e.op, a, b);
}

Value Interp::eval(const Expr& e, const FrameP& frame) {
  tick();
  line_ = e.line;
  Deeper deeper(*this);
  switch (e.op) {
    case Op::Const: return e.value;
    case Op::Name: return evalName(e, frame);
    case Op::List: case Op::Tuple: return evalList(e, frame);
    case Op::Dict: return evalDict(e, frame);
    case Op::GetAttr: case Op::Call: case Op::Filter: case Op::Test: return evalApply(e, frame);
    case Op::GetItem: return evalSubscript(e, frame);
    case Op::Slice: fail("a slice is only allowed inside brackets");
    case Op::Not: case Op::And: case Op::Or: case Op::Cond: return evalLogic(e, frame);
    case Op::Concat: return evalConcat(e, frame);
    case Op::Compare: return evalCompare(e, frame);
    default: return evalArith(e, frame);
  }
}

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
// Iteration, attribute and item access, slicing, arithmetic: Python semantics with jinja2's sandbox rules
// (a failed lookup gives an undefined value, a misused undefined value raises).

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return {};
    case Kind::List:
      if (v.l().pending) fail("{}", *v.l().pending);
      return v.l().items;
    case Kind::Dict: {
      std::vector<Value> keys;
      for (const auto& [k, x] : v.d().items) keys.push_back(k);
      return keys;
    }
    case Kind::Str: {
      std::vector<Value> chars;
      for (char32_t c : decodeUtf8(v.s())) {
        std::string one;
        appendUtf8(one, c);
        chars.push_back(Value::str(std::move(one)));
      }
      return chars;
    }
    case Kind::Loop: return *std::get<LoopP>(v.v)->items;
    default: fail("{} object is not iterable", strRepr(typeName(v)));
  }
}

std::int64_t lengthOf(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return 0;
    case Kind::Str: return static_cast<std::int64_t>(codePointCount(v.s()));
    case Kind::List:
      if (v.l().iterator) fail("object of type {} has no len()", strRepr(typeName(v)));
      return static_cast<std::int64_t>(v.l().items.size());
    case Kind::Dict: return static_cast<std::int64_t>(v.d().items.size());
    case Kind::Loop: return std::get<LoopP>(v.v)->length();
    default: fail("object of type {} has no len()", strRepr(typeName(v)));
  }
}

Value strMethod(const Value& self, const std::string& name);
Value dictMethod(const Value& self, const std::string& name);
Value listMethod(const Value& self, const std::string& name);
Value loopAttr(const Value& loop, const std::string& name);

Value getAttr(Interp&, const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Kind::Undefined:
      if (name.rfind("__", 0) == 0) return obj;  // the sandbox's answer for a dunder, before Undefined's own error
      failUndefined(obj);
    case Kind::Dict: {
      Value m = dictMethod(obj, name);
      if (!m.is(Kind::Undefined)) return m;
      if (name == "copy" || name == "pop" || name == "popitem" || name == "setdefault" || name == "update" ||
          name == "clear" || name == "fromkeys")
        return Value::undefined(fmt::format("access to attribute {} of 'dict' object is unsafe.", strRepr(name)));
      const Value* v = obj.d().findStr(name);
      return v ? *v : Value::undefined(attrMissing(obj, name));
    }
    case Kind::Str: {
      Value m = strMethod(obj, name);
      return m.is(Kind::Undefined) ? Value::undefined(attrMissing(obj, name)) : m;
    }
    case Kind::List: {
      if (!obj.l().plain()) return Value::undefined(attrMissing(obj, name));
      Value m = listMethod(obj, name);
      return m.is(Kind::Undefined) ? Value::undefined(attrMissing(obj, name)) : m;
    }
    case Kind::Namespace: {
      Value* v = std::get<NsP>(obj.v)->find(name);
      return v ? *v : Value::undefined(attrMissing(obj, name));
    }
    case Kind::Loop: return loopAttr(obj, name);
    default: return Value::undefined(attrMissing(obj, name));
  }
}

std::optional<std::size_t> normIndex(std::int64_t k, std::size_t size) {
  const std::int64_t n = static_cast<std::int64_t>(size);
  if (k < 0) k += n;
  if (k < 0 || k >= n) return std::nullopt;
  return static_cast<std::size_t>(k);
}

Value getItem(Interp& in, const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Kind::Undefined: failUndefined(obj);
    case Kind::Dict: {
      if (const Value* v = obj.d().find(key)) return *v;
      if (key.is(Kind::Str)) return getAttr(in, obj, key.s());
      return Value::undefined(elementMissing(obj, key));
    }
    case Kind::List:
      if (key.isIntLike() && obj.l().plain()) {  // an iterator's or view's TypeError is undefined in jinja2
        const auto k = normIndex(key.i(), obj.l().items.size());
        return k ? obj.l().items[*k] : Value::undefined(elementMissing(obj, key));
      }
      break;
    case Kind::Str:
      if (key.isIntLike()) {
        in.scan(obj);
        const std::u32string cps = decodeUtf8(obj.s());
        const auto k = normIndex(key.i(), cps.size());
        return k ? Value::str(encodeUtf8(cps.substr(*k, 1))) : Value::undefined(elementMissing(obj, key));
      }
      break;
    default: break;
  }
  if (key.is(Kind::Str)) return getAttr(in, obj, key.s());
  return Value::undefined(elementMissing(obj, key));
}

// Python's slice.indices(): the positions a[start:stop:step] visits.
std::vector<std::size_t> sliceIndices(std::size_t size, const Value& start, const Value& stop, const Value& step) {
  auto asInt = [](const Value& v, std::int64_t def) {
    if (v.is(Kind::None)) return def;
    if (v.is(Kind::Undefined)) failUndefined(v);
    if (!v.isIntLike()) fail("slice indices must be integers or None or have an __index__ method");
    return v.i();
  };
  const std::int64_t n = static_cast<std::int64_t>(size);
  const std::int64_t st = asInt(step, 1);
  if (st == 0) fail("slice step cannot be zero");
  const std::int64_t lower = st < 0 ? -1 : 0, upper = st < 0 ? n - 1 : n;
  auto clamp = [&](const Value& v, std::int64_t def) {
    if (v.is(Kind::None)) return def;
    std::int64_t k = asInt(v, 0);
    if (k < 0) k = std::max(k + n, lower);
    else k = std::min(k, upper);
    return k;
  };
  const std::int64_t b = clamp(start, st < 0 ? upper : lower), e = clamp(stop, st < 0 ? lower : upper);
  std::vector<std::size_t> out;
  for (std::int64_t k = b; st > 0 ? k < e : k > e; k += st) out.push_back(static_cast<std::size_t>(k));
  return out;
}

Value sliceValue(Interp& in, const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is(Kind::Undefined)) failUndefined(obj);
  if (obj.is(Kind::List) && obj.l().plain()) {
    const auto idx = sliceIndices(obj.l().items.size(), start, stop, step);
    std::vector<Value> items;
    items.reserve(idx.size());
    for (std::size_t k : idx) items.push_back(obj.l().items[k]);
    in.tick(items.size() / 16);
    return Value::list(std::move(items), obj.l().tuple);
  }
  if (obj.is(Kind::Str)) {
    const std::u32string cps = decodeUtf8(obj.s());
    std::u32string out;
    in.scan(obj);
    for (std::size_t k : sliceIndices(cps.size(), start, stop, step)) out += cps[k];
    return Value::str(encodeUtf8(out));
  }
  // jinja2 compiles a slice to Python's own subscript, whose TypeError is not turned into an undefined value.
  if (obj.is(Kind::Dict)) fail("unhashable type: 'slice'");
  fail("{} object is not subscriptable", strRepr(typeName(obj)));
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::Undefined: return false;
    case Kind::Str:
      if (!item.is(Kind::Str)) fail("'in <string>' requires string as left operand, not {}", typeName(item));
      return container.s().find(item.s()) != std::string::npos;
    case Kind::List:
      if (container.l().pending) fail("{}", *container.l().pending);
      return std::any_of(container.l().items.begin(), container.l().items.end(), [&](const Value& x) { return pyEquals(x, item); });
    case Kind::Dict: return container.d().find(item) != nullptr;
    default: fail("argument of type {} is not iterable", strRepr(typeName(container)));
  }
}

[[noreturn]] void unsupportedOperands(const char* op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for {}: {} and {}", op, strRepr(typeName(a)), strRepr(typeName(b)));
}

[[noreturn]] void intOverflow() { fail("integer overflow (integers beyond 64 bits are not supported)"); }
std::int64_t addInt(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) intOverflow();
  return r;
}
std::int64_t subInt(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) intOverflow();
  return r;
}
std::int64_t mulInt(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) intOverflow();
  return r;
}

Value repeat(Interp& in, const Value& seq, std::int64_t times) {
  if (times < 0) times = 0;
  if (seq.is(Kind::Str)) {
    const std::size_t size = seq.s().size();
    if (size && static_cast<std::uint64_t>(times) > in.maxBytes() / size) fail("a value would exceed {} bytes", in.maxBytes());
    in.charge(size * static_cast<std::size_t>(times));
    std::string out;
    out.reserve(size * static_cast<std::size_t>(times));
    for (std::int64_t k = 0; k < times; ++k) out += seq.s();
    return Value::str(std::move(out));
  }
  const auto& items = seq.l().items;
  if (!items.empty() && static_cast<std::uint64_t>(times) > kMaxItems / items.size()) fail("a list would hold more than {} items", kMaxItems);
  in.tick(items.size() * static_cast<std::size_t>(times) / 16);
  std::vector<Value> out;
  for (std::int64_t k = 0; k < times; ++k) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), seq.l().tuple);
}

double floatMod(double a, double b) {  // Python float %: the sign of the divisor
  double m = std::fmod(a, b);
  if (m != 0) {
    if ((b < 0) != (m < 0)) m += b;
  } else {
    m = std::copysign(0.0, b);
  }
  return m;
}

double floatFloorDiv(double a, double b) {  // Python float //
  const double m = std::fmod(a, b);
  double div = (a - m) / b;
  if (m != 0 && ((b < 0) != (m < 0))) div -= 1.0;
  if (div == 0) return std::copysign(0.0, a / b);
  const double fl = std::floor(div);
  return div - fl > 0.5 ? fl + 1.0 : fl;
}

Value arithNumbers(Op op, const Value& a, const Value& b) {
  const bool ints = a.isIntLike() && b.isIntLike();
  switch (op) {
    case Op::Add: return ints ? Value::integer(addInt(a.i(), b.i())) : Value::real(a.f() + b.f());
    case Op::Sub: return ints ? Value::integer(subInt(a.i(), b.i())) : Value::real(a.f() - b.f());
    case Op::Mul: return ints ? Value::integer(mulInt(a.i(), b.i())) : Value::real(a.f() * b.f());
    case Op::Div:
      if (b.f() == 0) fail("division by zero");
      return Value::real(a.f() / b.f());
    case Op::FloorDiv: case Op::Mod: {
      if (ints) {
        if (b.i() == 0) fail("integer division or modulo by zero");
        if (a.i() == std::numeric_limits<std::int64_t>::min() && b.i() == -1) intOverflow();
        std::int64_t q = a.i() / b.i(), m = a.i() % b.i();
        if (m != 0 && ((m < 0) != (b.i() < 0))) --q, m += b.i();
        return Value::integer(op == Op::FloorDiv ? q : m);
      }
      if (b.f() == 0) fail("{}", op == Op::Mod ? "float modulo" : "float floor division by zero");
      return Value::real(op == Op::FloorDiv ? floatFloorDiv(a.f(), b.f()) : floatMod(a.f(), b.f()));
    }
    default: break;
  }
  // Pow
  if (ints && b.i() >= 0) {
    std::int64_t result = 1, base = a.i(), e = b.i();
    while (e > 0) {
      if (e & 1) result = mulInt(result, base);
      e >>= 1;
      if (e) base = mulInt(base, base);
    }
    return Value::integer(result);
  }
  if (a.f() == 0 && b.f() < 0) fail("0.0 cannot be raised to a negative power");
  return Value::real(std::pow(a.f(), b.f()));
}

const char* opSymbol(Op op) {
  switch (op) {
    case Op::Add: return "+";
    case Op::Sub: return "-";
    case Op::Mul: return "*";
    case Op::Div: return "/";
    case Op::FloorDiv: return "//";
    case Op::Mod: return "%";
    default: return "** or pow()";
  }
}

Value binaryOp(Interp& in, Op op, const Value& a, const Value& b) {
  if (a.is(Kind::Undefined)) failUndefined(a);
  if (b.is(Kind::Undefined)) failUndefined(b);
  if (a.isNumber() && b.isNumber()) return arithNumbers(op, a, b);
  if (op == Op::Add) {
    if (a.is(Kind::Str)) {
      if (!b.is(Kind::Str)) fail("can only concatenate str (not \"{}\") to str", typeName(b));
      in.charge(a.s().size() + b.s().size());
      return Value::str(a.s() + b.s());
    }
    if (a.is(Kind::List) && a.l().plain()) {
      const char* t = typeName(a);
      if (!b.is(Kind::List) || b.l().tuple != a.l().tuple || !b.l().plain()) fail("can only concatenate {} (not \"{}\") to {}", t, typeName(b), t);
      if (a.l().items.size() + b.l().items.size() > kMaxItems) fail("a list would hold more than {} items", kMaxItems);
      in.tick((a.l().items.size() + b.l().items.size()) / 16);
      std::vector<Value> items = a.l().items;
      items.insert(items.end(), b.l().items.begin(), b.l().items.end());
      return Value::list(std::move(items), a.l().tuple);
    }
  }
  if (op == Op::Mul) {
    if ((a.is(Kind::Str) || (a.is(Kind::List) && a.l().plain())) && b.isIntLike()) return repeat(in, a, b.i());
    if ((b.is(Kind::Str) || (b.is(Kind::List) && b.l().plain())) && a.isIntLike()) return repeat(in, b, a.i());
  }
  if (op == Op::Mod && a.is(Kind::Str)) fail("printf-style string formatting ('%' on a string) is not supported");
  unsupportedOperands(opSymbol(op), a, b);
}

Value unaryOp(Op op, const Value& a) {
  if (a.is(Kind::Undefined)) failUndefined(a);
  if (!a.isNumber()) fail("bad operand type for unary {}: {}", op == Op::Neg ? "-" : "+", strRepr(typeName(a)));
  if (a.is(Kind::Float)) return Value::real(op == Op::Neg ? -a.f() : a.f());
  if (op == Op::Pos) return Value::integer(a.i());
  return Value::integer(subInt(0, a.i()));
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
  if (st.indent) st.itemSep = ",";
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

Value Interp::filter(const std::string& name, Value subject, Args& args) {
  const auto& table = filterTable();
  const auto it = table.find(name);
  if (it == table.end()) fail("No filter named {} found.", strRepr(name));
  scan(subject);
  return it->second(*this, subject, args);
}

// ---------------------------------------------------------------------------------------------------------------
// Tests.

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

struct TemplateData {
  Body body;
  std::string label;
};

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

}  // namespace

struct Template::Impl : TemplateData {};

Template::Template() = default;
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;

const std::string& Template::label() const { return impl_->label; }

Template Template::parse(std::string_view source, std::string label) {
  auto p = reinterpret_cast<const utf8proc_uint8_t*>(source.data());
  for (std::size_t k = 0; k < source.size();) {
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t n = utf8proc_iterate(p + k, static_cast<utf8proc_ssize_t>(source.size() - k), &cp);
    if (n <= 0) eq::fail(Errc::BadConfig, "{}: not valid UTF-8 (at byte {})", label, k);
    k += static_cast<std::size_t>(n);
  }
  auto impl = std::make_shared<Impl>();
  impl->label = std::move(label);
  try {
    Parser parser(Lexer(normalizeSource(source)).run());
    impl->body = parser.parseTemplate();
  } catch (const SyntaxFailure& f) {
    eq::fail(Errc::BadConfig, "{}: syntax error at line {}: {}", impl->label, f.line, f.message);
  } catch (const UnsupportedFailure& f) {
    eq::fail(Errc::Unsupported, "{}: line {}: {}", impl->label, f.line, f.message);
  }
  Template t;
  t.impl_ = std::move(impl);
  return t;
}

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  Interp in(*impl_, options);
  try {
    return in.render(context);
  } catch (const RaiseFailure& f) {
    eq::fail(Errc::InvalidArgument, "{}: {}", impl_->label, f.message);
  } catch (const RuntimeFailure& f) {
    eq::fail(Errc::InvalidArgument, "{}: line {}: {}", impl_->label, in.line(), f.message);
  }
}

}  // namespace eq::text::jinja
