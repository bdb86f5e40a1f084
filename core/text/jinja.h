// A bounded interpreter for the subset of Jinja2 that HF chat templates use, written to render exactly what
// Python jinja2 renders in transformers' environment (ImmutableSandboxedEnvironment with trim_blocks,
// lstrip_blocks and the loopcontrols extension; Python str/int/float/list/dict semantics and printing).
// Lexer -> parser to an AST -> tree-walking evaluator over a small value type. No file access: include, import,
// extends and block are rejected. Rendering is bounded in steps, output size and call depth, and parsing in
// nesting depth, so a hostile template ends in an Error, not a hang or a stack overflow.
// Checked against Python jinja2 3.1 by tests/data/chat/chat_golden.json (tools/fixtures/make_chat_golden.py) and by
// seeded random templates (jinja_fuzz_golden.json, tools/fixtures/make_jinja_fuzz.py). Known differences, each
// outside what chat templates do: an unknown filter or test is an error when it runs, not when the template
// compiles; a generator (select, map, ...) can be iterated twice and prints without its address; range() is a list;
// str.center / zfill / partition / encode, list.copy, the globals lipsum / cycler / joiner, printf-style '%' on
// strings, integers beyond 64 bits and the loop object inside a list, dict or namespace are refused with an error
// rather than rendered.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace eq::text::jinja {

struct Limits {
  std::uint64_t maxSteps = 5'000'000;       // expression nodes evaluated, loop iterations, bytes copied / 64
  std::size_t maxOutputBytes = 32u << 20;   // the rendered text and any single string or list built on the way
  int maxCallDepth = 64;                    // nested macro calls
};

struct RenderOptions {
  Limits limits;
  // strftime_now(format) for the template; empty: the function is not defined.
  std::function<std::string(const std::string& format)> strftimeNow;
};

class Template {
 public:
  // Parses `source`. Throws Error(BadConfig) "<label>: syntax error at line N: <problem>", or
  // Error(Unsupported) "<label>: line N: '<tag>' is not supported (templates cannot load other files)".
  static Template parse(std::string_view source, std::string label);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  Template(const Template&);  // copies share the parsed template (it is immutable)
  Template& operator=(const Template&);

  // Renders with the members of `context` (a JSON object) as variables; JSON null is Python None and a name not
  // in the context is undefined. Throws Error(InvalidArgument): raise_exception(msg) gives "<label>: <msg>";
  // other runtime errors (undefined attribute, type errors, limits) give "<label>: line N: <problem>".
  std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

  const std::string& label() const;

 private:
  struct Impl;
  Template();
  std::shared_ptr<const Impl> impl_;
};

}  // namespace eq::text::jinja
