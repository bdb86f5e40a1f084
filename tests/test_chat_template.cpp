// Chat templates and the Jinja interpreter against Python jinja2 in transformers' environment
// (tests/data/chat/chat_golden.json, made by tools/fixtures/make_chat_golden.py): the real templates of Llama 3.1 /
// 3.2, Qwen 2.5 / 3, Mistral v0.1 / v0.3, Phi-3, Gemma, SmolLM2 and DeepSeek-R1 rendered byte for byte (or with the
// exact raise_exception message), interpreter snippets, limits on hostile templates, and loading a template from a
// model folder, the tokenizer_config.json forms and an .eqz file.
#include "format/archive.h"
#include "format/eqz.h"
#include "model/model_source.h"
#include "pipeline/compress.h"
#include "test_util.h"
#include "text/chat_template.h"
#include "text/jinja.h"

#include <map>
#include <optional>

using namespace eq;
using namespace eq::text;
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

fs::path chatData() { return eqtest::dataDir() / "chat"; }

// The golden's fixed "now": 2025-03-09 14:05:06.
std::tm fixedNow() {
  std::tm tm{};
  tm.tm_year = 2025 - 1900;
  tm.tm_mon = 2;
  tm.tm_mday = 9;
  tm.tm_hour = 14;
  tm.tm_min = 5;
  tm.tm_sec = 6;
  return tm;
}

jinja::RenderOptions snippetOptions() {
  jinja::RenderOptions o;
  o.strftimeNow = [](const std::string& format) {
    std::tm tm = fixedNow();
    timegm(&tm);
    char buf[256];
    return std::string(buf, std::strftime(buf, sizeof buf, format.c_str(), &tm));
  };
  return o;
}

// A golden's template: its source with the bos / eos tokens of its "templates" entry (null: the tokenizer has none).
ChatTemplate goldenTemplate(const std::string& source, const ojson& info) {
  auto token = [&](const char* key) { return info[key].is_null() ? std::string() : info[key].get<std::string>(); };
  return ChatTemplate::fromSource(source, "chat template", token("bos_token"), token("eos_token"));
}

// A golden case's render options (generation prompt, tools, extra variables) at the fixed "now".
ChatRenderOptions caseOptions(const ojson& c) {
  ChatRenderOptions o;
  o.addGenerationPrompt = c["add_generation_prompt"].get<bool>();
  o.tools = c["tools"];
  o.extraVariables = c["extra"];
  o.now = fixedNow;
  return o;
}

std::vector<ChatMessage> toMessages(const ojson& list) {
  std::vector<ChatMessage> out;
  for (const auto& m : list) {
    ChatMessage cm;
    cm.role = m["role"].get<std::string>();
    for (const auto& [k, v] : m.items()) {
      if (k == "role") continue;
      if (k == "content" && v.is_string()) cm.content = v.get<std::string>();
      else cm.extra[k] = v;
    }
    out.push_back(std::move(cm));
  }
  return out;
}

// Runs `expr`, which must throw eq::Error with `code`; returns its message.
template <typename F>
std::string errorOf(F&& expr, Errc code) {
  try {
    expr();
  } catch (const Error& e) {
    if (e.code() != code) return std::string("wrong code ") + errcName(e.code()) + ": " + e.what();
    return e.what();
  }
  return "no error";
}

// Reports an unexpected eq::Error as a test failure instead of aborting the run.
#define EQ_NO_THROW(...)                                    \
  do {                                                      \
    try {                                                   \
      __VA_ARGS__;                                          \
    } catch (const std::exception& e_) {                    \
      QFAIL((std::string("unexpected error: ") + e_.what()).c_str()); \
    }                                                       \
  } while (0)

bool endsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string render(const std::string& source, const ojson& context = ojson::object()) {
  return jinja::Template::parse(source, "t").render(context, snippetOptions());
}

void writeTinyModel(const fs::path& dir) {
  fs::create_directories(dir);
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors"})
    fs::copy_file(eqtest::dataDir() / "models/tiny-llama" / f, dir / f);
}

}  // namespace

class TestChatTemplate : public QObject {
  Q_OBJECT
  ojson golden_;
  std::map<std::string, std::string> sources_;

  const std::string& templateSource(const std::string& name) {
    auto it = sources_.find(name);
    if (it == sources_.end())
      it = sources_.emplace(name, eqtest::readText(chatData() / golden_["templates"][name]["file"].get<std::string>())).first;
    return it->second;
  }

 private slots:
  void initTestCase() { golden_ = ojson::parse(eqtest::readText(chatData() / "chat_golden.json")); }

  void matchesJinja2_data() {
    QTest::addColumn<int>("index");
    for (std::size_t i = 0; i < golden_["cases"].size(); ++i)
      QTest::newRow(golden_["cases"][i]["name"].get<std::string>().c_str()) << int(i);
  }
  void matchesJinja2() {
    QFETCH(int, index);
    const ojson& c = golden_["cases"][static_cast<std::size_t>(index)];
    const std::string name = c["template"].get<std::string>();
    const auto tmpl = goldenTemplate(templateSource(name), golden_["templates"][name]);
    const ChatRenderOptions o = caseOptions(c);
    const auto messages = toMessages(c["messages"]);
    if (c.contains("expected")) {
      std::string got;
      EQ_NO_THROW(got = tmpl.render(messages, o));
      QCOMPARE(eqtest::q(got), eqtest::q(c["expected"].get<std::string>()));
    } else {
      EQ_EXPECT_ERROR(tmpl.render(messages, o), Errc::InvalidArgument, "chat template: " + c["error"].get<std::string>());
    }
  }

  // Differential: seeded random conversations through the eleven real templates (tools/fixtures/make_chat_fuzz.py):
  // the same text, the same raise_exception message, or an error where jinja2 raised a Python error.
  // EQ_CHAT_FUZZ names a larger file made by the same script.
  void matchesJinja2OnRandomConversations() {
    const auto fuzz = ojson::parse(eqtest::readText(eqtest::goldenOr("EQ_CHAT_FUZZ", chatData() / "chat_fuzz_golden.json")));
    std::map<std::string, ChatTemplate> templates;
    for (const auto& [name, info] : fuzz["templates"].items())
      templates.emplace(name, goldenTemplate(eqtest::readText(chatData() / info["file"].get<std::string>()), info));
    int failures = 0, rendered = 0;
    for (const auto& c : fuzz["cases"]) {
      const ChatRenderOptions o = caseOptions(c);
      std::string got, problem = "(none)";
      bool raised = false;
      try {
        got = templates.at(c["template"].get<std::string>()).render(toMessages(c["messages"]), o);
      } catch (const Error& e) {
        raised = true;
        problem = e.what();
      }
      std::string what;
      if (c.contains("expected")) {
        ++rendered;
        if (raised) what = "raised (" + problem + ")";
        else if (got != c["expected"].get<std::string>())
          what = "rendered " + ojson(got).dump() + ", jinja2 " + ojson(c["expected"]).dump();
      } else if (c.contains("error")) {  // raise_exception's text exactly; other jinja2 errors after our line number
        const std::string err = c["error"].get<std::string>();
        if (problem != "chat template: " + err && !(problem.rfind("chat template: line ", 0) == 0 && endsWith(problem, ": " + err)))
          what = "gave " + (raised ? problem : ojson(got).dump()) + ", jinja2 raised " + c["error"].get<std::string>();
      } else if (!raised) {
        what = "rendered where jinja2 raises " + c["python_error"].get<std::string>();
      }
      if (!what.empty() && ++failures <= 10)
        qWarning("%s: %s (messages %s)", c["name"].get<std::string>().c_str(), what.c_str(),
                 c["messages"].dump().substr(0, 600).c_str());
    }
    QVERIFY(rendered >= 100);
    QVERIFY2(failures == 0, qPrintable(QString("%1 of %2 conversations differ from jinja2").arg(failures)
                                           .arg(fuzz["cases"].size())));
  }

  void snippets_data() {
    QTest::addColumn<int>("index");
    for (std::size_t i = 0; i < golden_["snippets"].size(); ++i)
      QTest::newRow(golden_["snippets"][i]["name"].get<std::string>().c_str()) << int(i);
  }
  void snippets() {
    QFETCH(int, index);
    const ojson& c = golden_["snippets"][static_cast<std::size_t>(index)];
    const std::string source = c["template"].get<std::string>();
    if (c.contains("syntax_error")) {
      const std::string message = c["syntax_error"].get<std::string>();
      if (c["syntax_error_type"] == "TemplateAssertionError") {
        // jinja2 rejects an unknown filter outside a condition when compiling; we, like jinja2 inside conditions,
        // when the filter runs.
        const auto t = jinja::Template::parse(source, "t");
        const std::string err = errorOf([&] { t.render(c["context"], snippetOptions()); }, Errc::InvalidArgument);
        QVERIFY2(err.find("No filter named 'nope'") != std::string::npos, err.c_str());
        return;
      }
      const std::string err = errorOf([&] { jinja::Template::parse(source, "t"); }, Errc::BadConfig);
      const std::string prefix = fmt::format("t: syntax error at line {}: ", c["lineno"].get<int>());
      QVERIFY2(err.rfind(prefix, 0) == 0, (err + " / jinja2: " + message).c_str());
      return;
    }
    std::optional<jinja::Template> parsed;
    EQ_NO_THROW(parsed = jinja::Template::parse(source, "t"));
    const jinja::Template& t = *parsed;
    if (c.contains("expected")) {
      std::string got;
      EQ_NO_THROW(got = t.render(c["context"], snippetOptions()));
      QCOMPARE(eqtest::q(got), eqtest::q(c["expected"].get<std::string>()));
      return;
    }
    const std::string err = errorOf([&] { t.render(c["context"], snippetOptions()); }, Errc::InvalidArgument);
    const std::string expected = c["error"].get<std::string>();
    if (c["error_type"] == "TemplateError") QCOMPARE(eqtest::q(err), eqtest::q("t: " + expected));
    else QVERIFY2(err.rfind("t: line ", 0) == 0 && endsWith(err, ": " + expected), (err + " / jinja2: " + expected).c_str());
  }

  // Differential: seeded random templates (tools/fixtures/make_jinja_fuzz.py) over a context of every value type.
  // Where jinja2 renders, the output must be the same byte for byte; where it raises, ours must raise (the messages
  // are not compared: the snippets above do that), except that a filter or operator this interpreter does not have,
  // or storing the loop object in a container, may be refused by name. EQ_JINJA_FUZZ names a larger file made by the same script.
  void matchesJinja2OnRandomTemplates() {
    const auto fuzz = ojson::parse(eqtest::readText(eqtest::goldenOr("EQ_JINJA_FUZZ", chatData() / "jinja_fuzz_golden.json")));
    const ojson& context = fuzz["context"];
    int failures = 0, rendered = 0, refused = 0;
    for (const auto& c : fuzz["cases"]) {
      const std::string source = c["template"].get<std::string>();
      std::string got, problem;
      bool raised = false;
      try {
        got = jinja::Template::parse(source, "t").render(context, snippetOptions());
      } catch (const Error& e) {
        raised = true;
        problem = e.what();
        if (e.code() != Errc::InvalidArgument && e.code() != Errc::BadConfig)
          problem = std::string("wrong code ") + errcName(e.code()) + ": " + problem;
      }
      std::string what;
      if (c.contains("expected")) {
        ++rendered;
        if (raised && (problem.find("is not supported") != std::string::npos ||
                       problem.find("No filter named") != std::string::npos ||
                       problem.find("cannot be stored inside") != std::string::npos)) {
          ++refused;  // a feature this interpreter does not have, refused by name: not a silent difference
          continue;
        }
        if (raised) what = "raised (" + problem + ") where jinja2 renders " + ojson(c["expected"]).dump();
        else if (got != c["expected"].get<std::string>())
          what = "rendered " + ojson(got).dump() + ", jinja2 " + ojson(c["expected"]).dump();
      } else if (!raised && c["error"].get<std::string>().rfind("TemplateAssertionError", 0) == 0) {
        // jinja2 refuses an unknown filter or test when it compiles the template, also in code that never runs;
        // we, like jinja2 inside an if's condition, when it runs (see snippets()).
      } else if (!raised) {
        what = "rendered " + ojson(got).dump() + " where jinja2 raises " + c["error"].get<std::string>();
      } else if (problem.rfind("wrong code", 0) == 0) {
        what = problem;
      }
      if (!what.empty() && ++failures <= 20) qWarning("%s: %s", ojson(source).dump().c_str(), what.c_str());
    }
    qInfo("%zu templates: jinja2 renders %d, of which %d use a feature refused here by name",
          fuzz["cases"].size(), rendered, refused);
    QVERIFY(rendered >= 100);
    QVERIFY2(failures == 0, qPrintable(QString("%1 of %2 templates differ from jinja2").arg(failures)
                                           .arg(fuzz["cases"].size())));
  }

  // Hostile templates end in an Error: step and size limits, recursion and nesting depth.
  void limits_data() {
    QTest::addColumn<QString>("source");
    QTest::addColumn<QString>("message");
    QTest::newRow("huge range") << "{% for i in range(100000000) %}x{% endfor %}"
                                << "t: line 1: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).";
    QTest::newRow("nested loops") << "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
                                  << "t: line 1: the template ran more than 5000000 steps (a runaway loop?)";
    QTest::newRow("recursive macro") << "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"
                                     << "t: line 1: macro calls nest deeper than 64 levels";
    QTest::newRow("recursion through deep expressions")
        << QString("{% macro f(n) %}{{ f(n + 1)%1 }}{% endmacro %}{{ f(0) }}").arg(QString(" + 1").repeated(350))
        << "t: line 1: the template nests deeper than 1000 levels while rendering";
    QTest::newRow("doubling string")
        << "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
        << "t: line 1: a value would exceed 33554432 bytes";
    QTest::newRow("string repeat") << "{{ 'x' * 100000000 }}" << "t: line 1: a value would exceed 33554432 bytes";
    QTest::newRow("list repeat") << "{{ [1, 2] * 1000000 }}" << "t: line 1: a list would hold more than 1000000 items";
    QTest::newRow("doubling list")
        << "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}"
        << "t: line 1: a list would hold more than 1000000 items";
    QTest::newRow("nesting values")
        << "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}{% endfor %}"
        << "t: line 1: a value nests deeper than 200 levels";
    QTest::newRow("namespace in namespace") << "{% set ns = namespace() %}{% set ns.self = ns %}"
                                            << "t: line 1: a Namespace cannot be stored inside a list, dict or namespace here";
    QTest::newRow("output size")
        << "{% set s = 'x' * 30000000 %}{{ s }}{{ s }}" << "t: line 1: the output would exceed 33554432 bytes";
  }
  void limits() {
    QFETCH(QString, source);
    QFETCH(QString, message);
    const auto t = jinja::Template::parse(source.toStdString(), "t");
    EQ_EXPECT_ERROR(t.render(ojson::object(), snippetOptions()), Errc::InvalidArgument, message.toStdString());
  }

  void customLimits() {
    jinja::RenderOptions o;
    o.limits.maxSteps = 1000;
    EQ_EXPECT_ERROR(jinja::Template::parse("{% for i in range(2000) %}{{ i }}{% endfor %}", "t").render({}, o),
                    Errc::InvalidArgument, "t: line 1: the template ran more than 1000 steps (a runaway loop?)");
    o.limits.maxOutputBytes = 10;
    o.limits.maxSteps = 1000000;
    EQ_EXPECT_ERROR(jinja::Template::parse("0123456789{{ 'x' }}", "t").render({}, o), Errc::InvalidArgument,
                    "t: line 1: the output would exceed 10 bytes");
  }

  void deepNestingIsASyntaxError_data() {
    QTest::addColumn<QString>("source");
    QTest::addColumn<QString>("message");
    QTest::newRow("parentheses") << QString("{{ %1 1 %2 }}").arg(QString("(").repeated(5000), QString(")").repeated(5000))
                                 << "t: syntax error at line 1: the template nests deeper than 200 levels";
    QTest::newRow("lists") << QString("{{ %1 %2 }}").arg(QString("[").repeated(5000), QString("]").repeated(5000))
                           << "t: syntax error at line 1: the template nests deeper than 200 levels";
    QTest::newRow("not") << QString("{{ %1 true }}").arg(QString("not ").repeated(5000))
                         << "t: syntax error at line 1: the template nests deeper than 200 levels";
    QTest::newRow("chained if-else") << QString("{{ 1%1 }}").arg(QString(" if x else 1").repeated(5000))
                                     << "t: syntax error at line 1: the template nests deeper than 200 levels";
    QTest::newRow("unary minus") << QString("{{ %1 1 }}").arg(QString("-").repeated(5000))
                                 << "t: syntax error at line 1: the template nests deeper than 200 levels";
    QTest::newRow("if blocks") << QString("%1%2").arg(QString("{% if true %}").repeated(5000), QString("{% endif %}").repeated(5000))
                               << "t: syntax error at line 1: the template nests deeper than 200 levels";
    QTest::newRow("long sum") << QString("{{ 1%1 }}").arg(QString(" + 1").repeated(5000))
                              << "t: syntax error at line 1: expression nests deeper than 400 levels";
    QTest::newRow("filter chain") << QString("{{ 'x'%1 }}").arg(QString("|trim").repeated(5000))
                                  << "t: syntax error at line 1: expression nests deeper than 400 levels";
  }
  void deepNestingIsASyntaxError() {
    QFETCH(QString, source);
    QFETCH(QString, message);
    EQ_EXPECT_ERROR(jinja::Template::parse(source.toStdString(), "t"), Errc::BadConfig, message.toStdString());
  }

  void nestingWithinLimitsWorks() {
    QCOMPARE(eqtest::q(render(QString("{{ %1 1 %2 }}").arg(QString("(").repeated(60), QString(")").repeated(60)).toStdString())),
             eqtest::q("1"));
    QCOMPARE(eqtest::q(render(QString("{{ 0%1 }}").arg(QString(" + 1").repeated(300)).toStdString())), eqtest::q("300"));
    QCOMPARE(eqtest::q(render("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% else %}done{% endif %}{% endmacro %}{{ f(50) }}")),
             eqtest::q("done"));
  }

  void filesAreNotLoaded_data() {
    QTest::addColumn<QString>("source");
    QTest::addColumn<QString>("message");
    QTest::newRow("include") << "a\n{% include 'other.jinja' %}" << "t: line 2: 'include' is not supported (templates cannot load other files)";
    QTest::newRow("import") << "{% import 'm.jinja' as m %}" << "t: line 1: 'import' is not supported (templates cannot load other files)";
    QTest::newRow("from") << "{% from 'm.jinja' import x %}" << "t: line 1: 'from' is not supported (templates cannot load other files)";
    QTest::newRow("extends") << "{% extends 'base.jinja' %}" << "t: line 1: 'extends' is not supported (templates cannot load other files)";
    QTest::newRow("block") << "{% block body %}{% endblock %}" << "t: line 1: 'block' is not supported (templates cannot load other files)";
  }
  void filesAreNotLoaded() {
    QFETCH(QString, source);
    QFETCH(QString, message);
    EQ_EXPECT_ERROR(jinja::Template::parse(source.toStdString(), "t"), Errc::Unsupported, message.toStdString());
  }

  void syntaxErrors() {
    EQ_EXPECT_ERROR(jinja::Template::parse("a\nb\n{% for x in %}{% endfor %}", "t"), Errc::BadConfig,
                    "t: syntax error at line 3: Expected an expression, got 'end of statement block'");
    EQ_EXPECT_ERROR(jinja::Template::parse("{{ x ]}}", "t"), Errc::BadConfig, "t: syntax error at line 1: unexpected ']'");
    EQ_EXPECT_ERROR(jinja::Template::parse("{{ x", "t"), Errc::BadConfig,
                    "t: syntax error at line 1: unexpected end of template, the tag is not closed");
    EQ_EXPECT_ERROR(jinja::Template::parse("{% break %}", "t"), Errc::BadConfig,
                    "t: syntax error at line 1: Encountered unknown tag 'break'.");
    EQ_EXPECT_ERROR(jinja::Template::parse(std::string("ok \xff"), "t"), Errc::BadConfig, "t: not valid UTF-8 (at byte 3)");
  }

  void runtimeErrorsNameTheLine() {
    const auto t = jinja::Template::parse("line 1\n{% for m in messages %}\n{{ m.content.x.y }}\n{% endfor %}", "t");
    EQ_EXPECT_ERROR(t.render(ojson{{"messages", {{{"content", "c"}}}}}), Errc::InvalidArgument,
                    "t: line 3: 'str object' has no attribute 'x'");
  }

  void noneAndUndefinedInTheContext() {
    QCOMPARE(eqtest::q(render("{{ tools is defined }} {{ tools is none }} {{ other is defined }}", ojson{{"tools", nullptr}})),
             eqtest::q("True True False"));
  }

  void renderOptions() {
    const auto tmpl = ChatTemplate::fromSource("{{ bos_token }}|{{ eos_token is defined }}|{% for m in messages %}{{ m.role }}:"
                                               "{{ m.content }}:{{ m.note }};{% endfor %}{{ flag }}|{{ strftime_now('%Y') }}",
                                               "chat template", "<s>");
    ChatRenderOptions o;
    o.extraVariables = {{"flag", true}};
    std::vector<ChatMessage> messages{{"user", "hi", {{"note", 1}}}, {"assistant", "ignored", {{"content", nullptr}}}};
    const std::string year = std::to_string(1900 + [] {
      const std::time_t t = std::time(nullptr);
      std::tm tm{};
      localtime_r(&t, &tm);
      return tm.tm_year;
    }());
    QCOMPARE(eqtest::q(tmpl.render(messages, o)), eqtest::q("<s>|False|user:hi:1;assistant:None:;True|" + year));
    o.extraVariables = {{"messages", 1}};
    EQ_EXPECT_ERROR(tmpl.render(messages, o), Errc::InvalidArgument,
                    "chat template: \"messages\" cannot be passed as an extra variable");
    QCOMPARE(tmpl.bosToken(), std::string("<s>"));
    QCOMPARE(tmpl.eosToken(), std::string());
  }

  // strftime_now as Python's naive datetime.now().strftime: %f from whole seconds, no time zone for %z / %Z.
  void strftimeNow() {
    const auto tmpl = ChatTemplate::fromSource("{{ strftime_now('%d %b %Y|%H:%M:%S.%f|%z%Z|%%z|%a %j') }}", "chat template");
    ChatRenderOptions o;
    o.now = fixedNow;
    QCOMPARE(eqtest::q(tmpl.render({}, o)), eqtest::q("09 Mar 2025|14:05:06.000000||%z|Sun 068"));
  }

  // ---- loading ----

  void loadFromFolder() {
    TempDir tmp("eq-chat");
    const fs::path dir = tmp.path() / "m";
    eqtest::writeFile(dir / "chat_template.jinja", "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}{{ eos_token }}\n");
    eqtest::writeFile(dir / "tokenizer_config.json",
                      R"({"bos_token": {"__type": "AddedToken", "content": "<B>", "lstrip": false}, "eos_token": "<E>",
                          "chat_template": "ignored: chat_template.jinja wins"})");
    const auto t = loadChatTemplate(dir);
    QVERIFY(t);
    QCOMPARE(eqtest::q(t->render({{"user", "a"}, {"assistant", "b"}})), eqtest::q("<B>[a][b]<E>"));
    QCOMPARE(t->bosToken(), std::string("<B>"));
    QCOMPARE(t->eosToken(), std::string("<E>"));
    QCOMPARE(eqtest::q(t->label()), eqtest::q("chat template (" + (dir / "chat_template.jinja").string() + ")"));
    // a file inside the folder, and the .jinja file itself, find the same template
    eqtest::writeFile(dir / "model.safetensors", "");
    QCOMPARE(eqtest::q(loadChatTemplate(dir / "model.safetensors")->render({{"user", "x"}})), eqtest::q("<B>[x]<E>"));
    QCOMPARE(eqtest::q(loadChatTemplate(dir / "chat_template.jinja")->render({{"user", "y"}})), eqtest::q("<B>[y]<E>"));
  }

  void loadFromTokenizerConfig_data() {
    QTest::addColumn<QString>("config");
    QTest::addColumn<QString>("rendered");  // "" when there is no template
    QTest::newRow("string") << R"({"chat_template": "{{ messages[0].content }}!", "eos_token": "</s>"})" << "hi!";
    QTest::newRow("named list")
        << R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ bos_token }}"}],
              "bos_token": "<s>"})"
        << "D<s>";
    QTest::newRow("no template") << R"({"bos_token": "<s>"})" << "";
    QTest::newRow("null template") << R"({"chat_template": null})" << "";
  }
  void loadFromTokenizerConfig() {
    QFETCH(QString, config);
    QFETCH(QString, rendered);
    TempDir tmp("eq-chat");
    eqtest::writeFile(tmp.path() / "tokenizer_config.json", config.toStdString());
    const auto t = loadChatTemplate(tmp.path());
    QCOMPARE(bool(t), !rendered.isEmpty());
    if (t) QCOMPARE(eqtest::q(t->render({{"user", "hi"}})), rendered);
  }

  void loadErrors() {
    TempDir tmp("eq-chat");
    const fs::path cfg = tmp.path() / "tokenizer_config.json";
    QVERIFY(!loadChatTemplate(tmp.path()));  // an empty folder: no template
    eqtest::writeFile(cfg, R"({"chat_template": [{"name": "rag", "template": "R"}, {"name": "tool_use", "template": "T"}]})");
    EQ_EXPECT_ERROR(loadChatTemplate(tmp.path()), Errc::BadConfig,
                    cfg.string() + ": \"chat_template\" names templates (rag, tool_use) but none is called \"default\"");
    eqtest::writeFile(cfg, R"({"chat_template": 5})");
    EQ_EXPECT_ERROR(loadChatTemplate(tmp.path()), Errc::InvalidJson,
                    cfg.string() + ": \"chat_template\" is neither a string nor a list of named templates");
    eqtest::writeFile(cfg, R"({"chat_template": "x", "bos_token": 3})");
    EQ_EXPECT_ERROR(loadChatTemplate(tmp.path()), Errc::InvalidJson,
                    cfg.string() + ": \"bos_token\" is neither a string nor an AddedToken object");
    eqtest::writeFile(cfg, R"({"chat_template": )");
    EQ_EXPECT_ERROR(loadChatTemplate(tmp.path()), Errc::InvalidJson, cfg.string() + ": not valid JSON (error at byte 19)");
    eqtest::writeFile(cfg, R"({"chat_template": "{% if x %}"})");
    EQ_EXPECT_ERROR(loadChatTemplate(tmp.path()), Errc::BadConfig,
                    "chat template (" + cfg.string() +
                        "): syntax error at line 1: Unexpected end of template. Jinja was looking for the following "
                        "tags: 'elif' or 'else' or 'endif'.");
    EQ_EXPECT_ERROR(loadChatTemplate(tmp.path() / "missing"), Errc::NotFound, (tmp.path() / "missing").string() + ": no such file or folder");
  }

  // `entquant compress` embeds chat_template.jinja and tokenizer_config.json; the template loads from the .eqz.
  void loadFromEqz() {
    TempDir tmp("eq-chat");
    const fs::path dir = tmp.path() / "model";
    writeTinyModel(dir);
    const std::string qwen3 = templateSource("qwen3");
    nlohmann::json config = {{"chat_template", qwen3}, {"eos_token", "<|im_end|>"}, {"bos_token", nullptr}};
    eqtest::writeFile(dir / "tokenizer_config.json", config.dump());
    const fs::path eqz = tmp.path() / "m.eqz";
    CompressOptions o;
    o.threads = 1;
    compressModel(*ModelSource::open(dir), eqz, o);
    QVERIFY(EqzFile::open(eqz).file("tokenizer_config.json"));

    const auto fromEqz = loadChatTemplate(eqz);
    QVERIFY(fromEqz);
    QCOMPARE(eqtest::q(fromEqz->source()), eqtest::q(qwen3));
    QCOMPARE(fromEqz->eosToken(), std::string("<|im_end|>"));
    ChatRenderOptions ro;
    ro.extraVariables = {{"enable_thinking", false}};
    QCOMPARE(eqtest::q(fromEqz->render({{"user", "Hi"}}, ro)),
             eqtest::q("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    QCOMPARE(eqtest::q(fromEqz->label()), eqtest::q("chat template (" + eqz.string() + " (embedded tokenizer_config.json))"));

    // chat_template.jinja in the folder is embedded too, and wins over tokenizer_config.json
    eqtest::writeFile(dir / "chat_template.jinja", "J{{ messages|length }}");
    const fs::path eqz2 = tmp.path() / "m2.eqz";
    compressModel(*ModelSource::open(dir), eqz2, o);
    QCOMPARE(eqtest::q(loadChatTemplate(eqz2)->render({{"user", "Hi"}})), eqtest::q("J1"));
    QCOMPARE(eqtest::q(loadChatTemplate(eqz2)->label()), eqtest::q("chat template (" + eqz2.string() + " (embedded chat_template.jinja))"));

    // an .eqz without the files has no template
    fs::remove(dir / "chat_template.jinja");
    fs::remove(dir / "tokenizer_config.json");
    const fs::path eqz3 = tmp.path() / "m3.eqz";
    compressModel(*ModelSource::open(dir), eqz3, o);
    QVERIFY(!loadChatTemplate(eqz3));
  }
};

QTEST_MAIN(TestChatTemplate)
#include "test_chat_template.moc"
