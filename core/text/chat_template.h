// A model's chat template (HF `apply_chat_template`): a conversation -> the prompt text, rendered by our Jinja
// interpreter (text/jinja.h) with the variables transformers passes: messages, tools, documents,
// add_generation_prompt, bos_token / eos_token, extra keyword arguments (e.g. enable_thinking), and the globals
// raise_exception and strftime_now. Loaded from chat_template.jinja or tokenizer_config.json in a model folder or
// embedded in an .eqz file.
#pragma once

#include "text/jinja.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace eq::text {

struct ChatMessage {
  ChatMessage() = default;
  ChatMessage(std::string r, std::string c, nlohmann::ordered_json e = nullptr)
      : role(std::move(r)), content(std::move(c)), extra(std::move(e)) {}
  std::string role, content;
  // More members of the message dict (tool_calls, tool_call_id, reasoning_content, ...). A member named
  // "content" replaces `content` (e.g. null, or a list of parts).
  nlohmann::ordered_json extra;
};

struct ChatRenderOptions {
  bool addGenerationPrompt = true;
  nlohmann::ordered_json tools;           // a list of JSON schemas; null: tools=None, as transformers passes it
  nlohmann::ordered_json extraVariables;  // an object, e.g. {"enable_thinking": false}
  std::function<std::tm()> now;           // for strftime_now; default: the local time now
  jinja::Limits limits;
};

class ChatTemplate {
 public:
  // Parses; throws Error(BadConfig) for a syntax error (with its line), Error(Unsupported) for include/extends.
  // An empty bos / eos token is undefined in the template (the tokenizer has none).
  static ChatTemplate fromSource(const std::string& source, std::string label, std::string bosToken = {},
                                 std::string eosToken = {});

  // The prompt text. Throws Error(InvalidArgument): "<label>: <message>" when the template calls
  // raise_exception (e.g. roles that do not alternate), "<label>: line N: <problem>" for other render errors.
  std::string render(const std::vector<ChatMessage>& messages, const ChatRenderOptions& options = {}) const;

  const std::string& source() const { return source_; }
  const std::string& label() const { return template_.label(); }
  const std::string& bosToken() const { return bos_; }
  const std::string& eosToken() const { return eos_; }

 private:
  ChatTemplate(jinja::Template t, std::string source, std::string bos, std::string eos);
  jinja::Template template_;
  std::string source_, bos_, eos_;
};

// The model's template: `chat_template.jinja` in a model folder, else tokenizer_config.json "chat_template" (a
// string, or a list of {name, template} of which "default" is taken), with bos_token / eos_token from
// tokenizer_config.json (a string or an AddedToken {"content": ...}). For an .eqz file, the same files embedded in
// it; for a path to a .jinja file or a tokenizer_config.json, that file. std::nullopt when there is no template
// (callers fall back to plain text). Throws Error naming the file for invalid JSON or a broken template.
std::optional<ChatTemplate> loadChatTemplate(const std::filesystem::path& modelFolderOrEqz);

}  // namespace eq::text
