// Internal to the Jinja interpreter (jinja.cpp and jinja_*.cpp): the failures it raises, the UTF-8 helpers and the
// value model, with Python's str(), repr(), truthiness and comparisons of values.
#pragma once

#include <fmt/format.h>
#include <utf8proc.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace eq::text::jinja::detail {

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

std::u32string decodeUtf8(std::string_view s);
void appendUtf8(std::string& out, char32_t cp);
std::string encodeUtf8(std::u32string_view s);
std::size_t codePointCount(std::string_view s);
bool isPySpace(char32_t c);
utf8proc_category_t category(char32_t c);
bool isCased(char32_t c);
char32_t toUpper(char32_t c);
char32_t toLower(char32_t c);
char32_t toTitle(char32_t c);
std::string_view rstripPySpace(std::string_view s);
std::size_t pySpaceRun(std::string_view s, std::size_t pos);

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

Value makeFunction(std::string name, std::function<Value(Interp&, Args&)> call);
[[noreturn]] void failUndefined(const Value& v);

// ---------------------------------------------------------------------------------------------------------------
// Python type names, str(), repr(), truthiness, equality and ordering.

const char* typeName(const Value& v);
std::string objectTypeRepr(const Value& v);
std::string floatRepr(double x);
std::string strRepr(const std::string& s);
void appendPy(std::string& out, const Value& v, bool repr, std::size_t cap);
std::string pyStr(const Value& v, std::size_t cap);
std::string shortRepr(const Value& v);
bool truthy(const Value& v);
bool pyLess(const Value& a, const Value& b, const char* op);
bool compareOp(const std::string& op, const Value& a, const Value& b);

}  // namespace eq::text::jinja::detail
