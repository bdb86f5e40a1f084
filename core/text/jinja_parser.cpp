// The Jinja parser: tokens to the AST (jinja_internal.h), with jinja2's grammar and operator precedence and bounded
// nesting.
#include "text/jinja_internal.h"

#include <algorithm>

namespace eq::text::jinja::detail {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Parser: jinja2's grammar and operator precedence (parser.py), for the tags chat templates use.

constexpr int kMaxNesting = 200;     // nested expressions / blocks while parsing (about 100 parentheses)
constexpr int kMaxExprDepth = 400;   // AST depth of one expression (long operator and filter chains)

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

}  // namespace

Body parseTokens(std::vector<Token> tokens) {
  Parser parser(std::move(tokens));
  return parser.parseTemplate();
}

}  // namespace eq::text::jinja::detail
