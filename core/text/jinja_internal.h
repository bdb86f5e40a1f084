// Internal to the Jinja interpreter (jinja.cpp and jinja_*.cpp): tokens, the AST, scopes and the evaluator, and the
// operations that the evaluator (jinja_eval.cpp) and the built-ins (jinja_builtins.cpp) share.
#pragma once

#include "text/jinja.h"
#include "text/jinja_value.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace eq::text::jinja::detail {

// ---------------------------------------------------------------------------------------------------------------
// Tokens, from the lexer (jinja_lexer.cpp).

enum class Tok { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type;
  std::string text;  // data, name, string value, operator
  std::int64_t i = 0;
  double f = 0;
  int line = 1;
};

std::string normalizeSource(std::string_view source);
bool isDigit(char c);
// The tokens of normalized source, the last one Eof; throws SyntaxFailure.
std::vector<Token> tokenize(std::string source);

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

// ---------------------------------------------------------------------------------------------------------------
// Parser (jinja_parser.cpp): the template's statements; throws SyntaxFailure or UnsupportedFailure.

Body parseTokens(std::vector<Token> tokens);

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

FrameP childFrame(const FrameP& parent);

enum class Flow { Normal, Break, Continue };

inline constexpr int kMaxValueDepth = 200;           // nesting of lists / dicts
inline constexpr std::size_t kMaxItems = 1'000'000;  // elements of one list or dict
inline constexpr std::int64_t kMaxRange = 100'000;   // as the jinja2 sandbox's MAX_RANGE
inline constexpr int kMaxRunDepth = 1000;            // nested evaluation: expressions, blocks and macro calls together

// Storing values in containers, and the message of a missing attribute (jinja_eval.cpp).
void checkStorable(const Value& v);
Value makeList(std::vector<Value> items, bool tuple = false);
void dictSet(Dict& d, Value key, Value value);
Value makeDict(Dict d);
std::string attrMissing(const Value& obj, const std::string& name);

// A parsed template: Template::Impl (jinja.cpp) is one, Interp renders one.
struct TemplateData {
  Body body;
  std::string label;
};

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

// Iteration, attribute and item access, slicing, arithmetic (jinja_eval.cpp).
std::vector<Value> iterate(const Value& v);
std::int64_t lengthOf(const Value& v);
Value getAttr(Interp& in, const Value& obj, const std::string& name);
Value getItem(Interp& in, const Value& obj, const Value& key);
std::vector<std::size_t> sliceIndices(std::size_t size, const Value& start, const Value& stop, const Value& step);
bool contains(const Value& container, const Value& item);
[[noreturn]] void intOverflow();
Value arithNumbers(Op op, const Value& a, const Value& b);
Value binaryOp(Interp& in, Op op, const Value& a, const Value& b);

// Methods of str, dict and list values, and the loop object (jinja_builtins.cpp).
Value strMethod(const Value& self, const std::string& name);
Value dictMethod(const Value& self, const std::string& name);
Value listMethod(const Value& self, const std::string& name);
Value loopAttr(const Value& loop, const std::string& name);

}  // namespace eq::text::jinja::detail
