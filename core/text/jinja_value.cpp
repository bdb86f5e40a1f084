// The Jinja interpreter's UTF-8 helpers and value model (jinja_value.h): building lists and dicts, Python's str(),
// repr(), truthiness, equality and ordering.
#include "text/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace eq::text::jinja::detail {

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

namespace {

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

}  // namespace

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
// Values (the types are in jinja_value.h).

namespace {

// A new list body over `items` (its nesting depth computed), for list(), iterator() and view() to mark.
std::shared_ptr<List> newList(std::vector<Value> items) {
  auto p = std::make_shared<List>();
  for (const Value& x : items) p->depth = std::max(p->depth, valueDepth(x) + 1);
  p->items = std::move(items);
  return p;
}

}  // namespace

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

Value Value::dict(Dict d) {
  for (const auto& [k, v] : d.items) d.depth = std::max(d.depth, std::max(valueDepth(k), valueDepth(v)) + 1);
  return fromData(DictP(std::make_shared<const Dict>(std::move(d))));
}

int valueDepth(const Value& v) {
  if (v.is(Kind::List)) return v.l().depth;
  if (v.is(Kind::Dict)) return v.d().depth;
  return 0;
}

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
    if (n > 1) mant += '.' + digits.substr(1);
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

namespace {

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

}  // namespace

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

}  // namespace eq::text::jinja::detail
