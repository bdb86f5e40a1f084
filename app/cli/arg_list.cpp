#include "cli/arg_list.h"

#include "pipeline/demo_model.h"

#include <fmt/format.h>

#include <charconv>

namespace eq::cli {

bool ArgList::flag(std::string_view name) {
  bool found = false;
  for (auto it = args_.begin(); it != args_.end();) {
    if (*it == name) {
      found = true;
      it = args_.erase(it);
    } else {
      ++it;
    }
  }
  return found;
}

std::vector<std::string> ArgList::values(std::string_view name) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < args_.size();) {
    const std::string& a = args_[i];
    if (a == name) {
      if (i + 1 >= args_.size()) throw UsageError(fmt::format("option {} needs a value", name));
      out.push_back(args_[i + 1]);
      args_.erase(args_.begin() + static_cast<long>(i), args_.begin() + static_cast<long>(i) + 2);
    } else if (a.size() > name.size() && a.compare(0, name.size(), name) == 0 && a[name.size()] == '=') {
      out.push_back(a.substr(name.size() + 1));
      args_.erase(args_.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
  return out;
}

std::optional<std::string> ArgList::value(std::string_view name) {
  auto all = values(name);
  if (all.empty()) return std::nullopt;
  return all.back();
}

template <typename T>
std::optional<T> ArgList::number(std::string_view name) {
  const auto text = value(name);
  if (!text) return std::nullopt;
  T v{};
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size())
    throw UsageError(fmt::format("option {} expects a number, got \"{}\"", name, *text));
  return v;
}
template std::optional<int> ArgList::number<int>(std::string_view);
template std::optional<long long> ArgList::number<long long>(std::string_view);
template std::optional<double> ArgList::number<double>(std::string_view);

std::vector<std::string> ArgList::positionals(std::size_t min, std::size_t max) {
  for (const auto& a : args_)
    if (a.size() > 1 && a[0] == '-' && a != "-") throw UsageError(fmt::format("unknown option {}", a));
  if (args_.size() < min) throw UsageError("missing argument");
  if (args_.size() > max) throw UsageError(fmt::format("unexpected argument \"{}\"", args_[max]));
  return args_;
}

std::string ArgList::modelOrDemo() {
  const auto pos = positionals(0, 1);
  if (!pos.empty()) return pos[0];
  const auto demo = demoModelPath();
  fmt::print(stderr, "No model given: using the bundled demo model ({}).\n", demo.string());
  return demo.string();
}

}  // namespace eq::cli
