// A conversation with a model: the history of messages, rendered by the model's chat template for every turn,
// with the KV cache reused for the prefix the new prompt shares with the last one (so a turn runs only its new
// tokens). Used by `entquant chat` and `entquant generate --chat`, and later by the GUI's chat pane.
#pragma once

#include "pipeline/lm.h"
#include "text/chat_template.h"

#include <string>
#include <vector>

namespace eq {

struct ChatTurn {
  GenerateResult result;
  std::int64_t reusedTokens = 0;  // prompt tokens taken from the cache
  int droppedMessages = 0;        // oldest messages left out so that the conversation fits the context
};

class ChatSession {
 public:
  ChatSession(model::CausalLM& lm, const text::Tokenizer& tok, text::ChatTemplate chatTemplate);

  void setSystem(std::string system);  // "" for none; takes effect from the next turn
  void clear();                        // forget the conversation
  const std::vector<text::ChatMessage>& messages() const { return messages_; }
  // Extra template variables (e.g. {"enable_thinking": false}).
  void setTemplateVariables(nlohmann::ordered_json vars) { variables_ = std::move(vars); }
  // Another template for this conversation (an override; the model's own is given to the constructor).
  void setTemplate(text::ChatTemplate chatTemplate) { template_ = std::move(chatTemplate); }
  const text::ChatTemplate& chatTemplate() const { return template_; }
  // Takes back the last exchange (the user's message and the answer) and returns the user's text, so that it can be
  // sent again (regenerate) or edited; "" when there is none. The cache keeps what it can reuse.
  std::string undoLastTurn();
  // Tokens in the model's cache (prompt and answers of the conversation so far, as far as they are kept).
  std::int64_t contextUsed() const { return lm_.position(); }

  // The prompt the template renders for the history plus `userText` (add_generation_prompt=true).
  std::string renderPrompt(const std::string& userText) const;
  // Adds the user's message, generates the answer (streamed through options.onText) and adds it to the history.
  // When the conversation no longer fits the context with room for options.maxTokens, the oldest messages after
  // the system message are left out. On an error (cancel included) the history is as before the call.
  ChatTurn send(const std::string& userText, GenerateOptions options);

 private:
  std::vector<text::ChatMessage> conversation(std::size_t firstKept, const std::string& userText) const;

  model::CausalLM& lm_;
  const text::Tokenizer& tok_;
  text::ChatTemplate template_;
  std::string system_;
  nlohmann::ordered_json variables_ = nlohmann::ordered_json::object();
  std::vector<text::ChatMessage> messages_;  // user and assistant turns, without the system message
  std::size_t firstKept_ = 0;                // messages_ before this index no longer fit the context
  std::vector<std::int32_t> cached_;         // ids in the model's cache
};

}  // namespace eq
