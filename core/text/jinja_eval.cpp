// The Jinja evaluator: statements and expressions over scopes (jinja_internal.h), and the Python semantics of
// iteration, attribute and item access, slicing and arithmetic.
#include "text/jinja_internal.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace eq::text::jinja::detail {

// ---------------------------------------------------------------------------------------------------------------
// Scopes (the types are in jinja_internal.h).

FrameP childFrame(const FrameP& parent) {
  auto f = std::make_shared<Frame>();
  f->parent = parent;
  return f;
}

// Containers and namespace attributes hold data only: no namespaces, loops or functions (these could form
// cycles or unbounded chains), and no deeper than kMaxValueDepth, so printing, comparing and freeing values
// never recurses without bound.
void checkStorable(const Value& v) {
  if (v.is(Kind::Namespace) || v.is(Kind::Loop) || v.is(Kind::Function))
    fail("a {} cannot be stored inside a list, dict or namespace here", typeName(v));
}

Value makeList(std::vector<Value> items, bool tuple) {
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

namespace {

std::string elementMissing(const Value& obj, const Value& key) {
  return fmt::format("{} has no element {}", objectTypeRepr(obj), shortRepr(key));
}

// Defined with the other operations below.
Value sliceValue(Interp& in, const Value& obj, const Value& start, const Value& stop, const Value& step);
Value unaryOp(Op op, const Value& a);

}  // namespace

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

namespace {

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

}  // namespace

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

namespace {

std::optional<std::size_t> normIndex(std::int64_t k, std::size_t size) {
  const std::int64_t n = static_cast<std::int64_t>(size);
  if (k < 0) k += n;
  if (k < 0 || k >= n) return std::nullopt;
  return static_cast<std::size_t>(k);
}

}  // namespace

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

namespace {

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

}  // namespace

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

namespace {

[[noreturn]] void unsupportedOperands(const char* op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for {}: {} and {}", op, strRepr(typeName(a)), strRepr(typeName(b)));
}

}  // namespace

[[noreturn]] void intOverflow() { fail("integer overflow (integers beyond 64 bits are not supported)"); }

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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

namespace {

Value unaryOp(Op op, const Value& a) {
  if (a.is(Kind::Undefined)) failUndefined(a);
  if (!a.isNumber()) fail("bad operand type for unary {}: {}", op == Op::Neg ? "-" : "+", strRepr(typeName(a)));
  if (a.is(Kind::Float)) return Value::real(op == Op::Neg ? -a.f() : a.f());
  if (op == Op::Pos) return Value::integer(a.i());
  return Value::integer(subInt(0, a.i()));
}

}  // namespace

}  // namespace eq::text::jinja::detail
