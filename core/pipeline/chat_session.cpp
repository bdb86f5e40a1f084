#include "pipeline/chat_session.h"

#include "common/error.h"

#include <algorithm>

namespace eq {

ChatSession::ChatSession(model::CausalLM& lm, const text::Tokenizer& tok, text::ChatTemplate chatTemplate)
    : lm_(lm), tok_(tok), template_(std::move(chatTemplate)) {}

void ChatSession::setSystem(std::string system) { system_ = std::move(system); }

void ChatSession::clear() {
  messages_.clear();
  firstKept_ = 0;
}

std::vector<text::ChatMessage> ChatSession::conversation(std::size_t firstKept, const std::string& userText) const {
  std::vector<text::ChatMessage> c;
  if (!system_.empty()) c.emplace_back("system", system_);
  c.insert(c.end(), messages_.begin() + static_cast<std::ptrdiff_t>(firstKept), messages_.end());
  c.emplace_back("user", userText);
  return c;
}

std::string ChatSession::renderPrompt(const std::string& userText) const {
  text::ChatRenderOptions ro;
  ro.extraVariables = variables_;
  return template_.render(conversation(firstKept_, userText), ro);
}

std::string ChatSession::undoLastTurn() {
  if (messages_.size() < 2) return {};
  std::string user = messages_[messages_.size() - 2].content;
  messages_.resize(messages_.size() - 2);
  firstKept_ = std::min(firstKept_, messages_.size());
  return user;
}

ChatTurn ChatSession::send(const std::string& userText, GenerateOptions options) {
  ChatTurn turn;
  text::ChatRenderOptions ro;
  ro.extraVariables = variables_;
  // Leave out the oldest user/assistant pairs until the prompt fits with room for the answer.
  std::size_t first = firstKept_;
  std::vector<std::int32_t> ids;
  const std::int64_t room = std::min<std::int64_t>(options.maxTokens, lm_.contextLength() / 2);
  while (true) {
    ids = tok_.encode(template_.render(conversation(first, userText), ro), false);
    if (static_cast<std::int64_t>(ids.size()) + room <= lm_.contextLength()) break;
    if (first + 2 > messages_.size())
      fail(Errc::InvalidArgument, "the message is {} tokens long with the chat template; the context holds {}",
           ids.size(), lm_.contextLength());
    first += 2;
  }
  turn.droppedMessages = static_cast<int>(first - firstKept_);
  // Reuse the cached prefix the new prompt shares with what the model has seen.
  std::size_t common = 0;
  const std::size_t inCache = std::min(cached_.size(), static_cast<std::size_t>(lm_.position()));
  while (common < inCache && common < ids.size() && cached_[common] == ids[common]) ++common;
  if (common == ids.size()) --common;  // at least one token must run to get the next-token logits
  lm_.truncate(static_cast<std::int64_t>(common));
  cached_.resize(common);
  options.reuseCache = true;
  turn.reusedTokens = static_cast<std::int64_t>(common);
  turn.result = generate(lm_, tok_, ids, options);
  cached_ = ids;
  cached_.insert(cached_.end(), turn.result.ids.begin(), turn.result.ids.end());
  cached_.resize(std::min(cached_.size(), static_cast<std::size_t>(lm_.position())));
  firstKept_ = first;
  messages_.emplace_back("user", userText);
  messages_.emplace_back("assistant", turn.result.text);
  return turn;
}

}  // namespace eq
