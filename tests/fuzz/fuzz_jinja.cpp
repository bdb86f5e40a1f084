// An arbitrary chat template: parse refuses it with Error(BadConfig / Unsupported), or it renders a conversation
// (with tools and extra variables) to text or to Error(InvalidArgument), within the step and output limits.
#include "fuzz_util.h"
#include "text/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string source(reinterpret_cast<const char*>(data), size);
  try {
    const auto t = eq::text::ChatTemplate::fromSource(source, "fuzz.jinja", "<s>", "</s>");
    std::vector<eq::text::ChatMessage> messages{
        {"system", "You are helpful."},
        {"user", "Hi {{ 1 }} {% raw %}"},
        {"assistant", "Hello!", {{"tool_calls", {{{"type", "function"}, {"function", {{"name", "f"}, {"arguments", {{"x", 1}}}}}}}}}},
        {"tool", "{\"ok\": true}", {{"tool_call_id", "0"}}},
        {"user", "Thanks"}};
    eq::text::ChatRenderOptions options;
    options.tools = nlohmann::ordered_json::parse(R"([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])");
    options.extraVariables = {{"enable_thinking", false}};
    options.now = [] { return std::tm{}; };
    options.limits.maxSteps = 200'000;
    options.limits.maxOutputBytes = 1u << 20;
    const auto out = t.render(messages, options);
    eqfuzz::check(out.size() <= options.limits.maxOutputBytes, "output within the limit");
  } catch (const eq::Error&) {
  }
  return 0;
}
