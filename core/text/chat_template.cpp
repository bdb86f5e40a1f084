#include "text/chat_template.h"

#include "common/error.h"
#include "common/json.h"
#include "format/eqz.h"

#include <fstream>
#include <sstream>

namespace eq::text {
namespace fs = std::filesystem;
namespace {

// datetime.now().strftime(format): Python formats %f itself (the time here has whole seconds) and prints nothing
// for %z / %Z of a naive datetime; the rest is the C library's strftime, as in CPython.
std::string formatTime(std::tm tm, const std::string& pythonFormat) {
  timegm(&tm);  // fills in the weekday and day of the year from the date
  std::string format;
  for (std::size_t k = 0; k < pythonFormat.size(); ++k) {
    if (pythonFormat[k] != '%' || k + 1 == pythonFormat.size()) {
      format += pythonFormat[k];
      continue;
    }
    const char c = pythonFormat[++k];
    if (c == 'f') format += "000000";
    else if (c != 'z' && c != 'Z') format += '%', format += c;
  }
  if (format.empty()) return {};
  std::vector<char> buf(256);
  for (int attempt = 0; attempt < 6; ++attempt) {
    const std::size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &tm);
    if (n > 0) return std::string(buf.data(), n);
    buf.resize(buf.size() * 8);
  }
  return {};  // the format produces no characters
}

std::tm localNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  return tm;
}

nlohmann::ordered_json messageDict(const ChatMessage& m) {
  nlohmann::ordered_json d = nlohmann::ordered_json::object();
  d["role"] = m.role;
  d["content"] = m.content;
  if (m.extra.is_null()) return d;
  if (!m.extra.is_object()) fail(Errc::InvalidArgument, "chat message extra members must be a JSON object");
  for (const auto& [k, v] : m.extra.items()) d[k] = v;
  return d;
}

// A model file: its text and the name it goes by in messages.
struct ModelFile {
  std::string text, label;
};

std::optional<ModelFile> readFile(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(Errc::Io, "{}: cannot be read", path.string());
  std::ostringstream buf;
  buf << in.rdbuf();
  return ModelFile{buf.str(), path.string()};
}

std::optional<ModelFile> embeddedFile(const EqzFile& f, const std::string& name) {
  const EqzSection* s = f.file(name);
  if (!s) return std::nullopt;
  const auto b = f.bytes(*s);
  return ModelFile{std::string(reinterpret_cast<const char*>(b.data()), b.size()),
                   f.path().string() + " (embedded " + name + ")"};
}

nlohmann::json parseConfig(const ModelFile& file) {
  return parseJson(file.text, file.label + ":");
}

std::optional<std::string> templateFromConfig(const nlohmann::json& config, const std::string& label) {
  if (!config.is_object() || !config.contains("chat_template") || config["chat_template"].is_null()) return std::nullopt;
  const auto& t = config["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (!t.is_array()) fail(Errc::InvalidJson, "{}: \"chat_template\" is neither a string nor a list of named templates", label);
  std::string names;
  for (const auto& entry : t) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() || !entry.contains("template") ||
        !entry["template"].is_string())
      fail(Errc::InvalidJson, "{}: \"chat_template\" list entries must be {{\"name\": ..., \"template\": ...}}", label);
    if (entry["name"] == "default") return entry["template"].get<std::string>();
    names += (names.empty() ? "" : ", ") + entry["name"].get<std::string>();
  }
  fail(Errc::BadConfig, "{}: \"chat_template\" names templates ({}) but none is called \"default\"", label, names);
}

std::string specialToken(const nlohmann::json& config, const char* key, const std::string& label) {
  if (!config.is_object() || !config.contains(key) || config[key].is_null()) return {};
  const auto& t = config[key];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content") && t["content"].is_string()) return t["content"].get<std::string>();
  fail(Errc::InvalidJson, "{}: \"{}\" is neither a string nor an AddedToken object", label, key);
}

std::optional<ChatTemplate> assemble(const std::optional<ModelFile>& jinjaFile, const std::optional<ModelFile>& configFile) {
  nlohmann::json config;
  if (configFile) config = parseConfig(*configFile);
  std::optional<std::string> source;
  std::string label;
  if (jinjaFile) {
    source = jinjaFile->text;
    label = jinjaFile->label;
  } else if (configFile) {
    source = templateFromConfig(config, configFile->label);
    label = configFile->label;
  }
  if (!source || source->empty()) return std::nullopt;
  const std::string configLabel = configFile ? configFile->label : std::string();
  return ChatTemplate::fromSource(*source, "chat template (" + label + ")", specialToken(config, "bos_token", configLabel),
                                  specialToken(config, "eos_token", configLabel));
}

}  // namespace

ChatTemplate::ChatTemplate(jinja::Template t, std::string source, std::string bos, std::string eos)
    : template_(std::move(t)), source_(std::move(source)), bos_(std::move(bos)), eos_(std::move(eos)) {}

ChatTemplate ChatTemplate::fromSource(const std::string& source, std::string label, std::string bosToken,
                                      std::string eosToken) {
  return ChatTemplate(jinja::Template::parse(source, std::move(label)), source, std::move(bosToken), std::move(eosToken));
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, const ChatRenderOptions& options) const {
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) list.push_back(messageDict(m));
  context["messages"] = std::move(list);
  context["tools"] = options.tools;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = options.addGenerationPrompt;
  if (!bos_.empty()) context["bos_token"] = bos_;
  if (!eos_.empty()) context["eos_token"] = eos_;
  if (!options.extraVariables.is_null() && !options.extraVariables.is_object())
    fail(Errc::InvalidArgument, "{}: the extra template variables must be a JSON object", label());
  if (options.extraVariables.is_object())
    for (const auto& [k, v] : options.extraVariables.items()) {
      if (k == "messages" || k == "tools" || k == "documents" || k == "add_generation_prompt")
        fail(Errc::InvalidArgument, "{}: \"{}\" cannot be passed as an extra variable", label(), k);
      context[k] = v;
    }
  jinja::RenderOptions ro;
  ro.limits = options.limits;
  const std::function<std::tm()> now = options.now ? options.now : std::function<std::tm()>(localNow);
  ro.strftimeNow = [now](const std::string& format) { return formatTime(now(), format); };
  return template_.render(context, ro);
}

std::optional<ChatTemplate> loadChatTemplate(const fs::path& path) {
  if (isEqzPath(path)) {
    const EqzFile f = EqzFile::open(path);
    return assemble(embeddedFile(f, "chat_template.jinja"), embeddedFile(f, "tokenizer_config.json"));
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) return assemble(readFile(path / "chat_template.jinja"), readFile(path / "tokenizer_config.json"));
  if (!fs::exists(path, ec)) fail(Errc::NotFound, "{}: no such file or folder", path.string());
  const fs::path folder = path.parent_path();
  if (path.extension() == ".jinja") {
    auto jinjaFile = readFile(path);
    if (!jinjaFile) fail(Errc::Io, "{}: cannot be read", path.string());
    return assemble(jinjaFile, readFile(folder / "tokenizer_config.json"));
  }
  return assemble(readFile(folder / "chat_template.jinja"), readFile(folder / "tokenizer_config.json"));
}

}  // namespace eq::text
