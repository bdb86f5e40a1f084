// Minimal command-line parsing for the entquant subcommands: named options are taken out one by one, what
// remains must be positionals. Anything left over or malformed is a usage error (exit code 2).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace eq::cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ArgList {
 public:
  explicit ArgList(std::vector<std::string> args) : args_(std::move(args)) {}
  // --name (no value). Present -> true, removed from the list.
  bool flag(std::string_view name);
  // --name VALUE or --name=VALUE; the last occurrence wins.
  std::optional<std::string> value(std::string_view name);
  // Every occurrence of --name VALUE, in order.
  std::vector<std::string> values(std::string_view name);
  // The remaining arguments; an unknown --option among them is a usage error.
  std::vector<std::string> positionals(std::size_t min, std::size_t max);

  // The one positional MODEL argument; when none is given, the bundled demo model (a note on stderr says so).
  std::string modelOrDemo();

  template <typename T>
  std::optional<T> number(std::string_view name);

 private:
  std::vector<std::string> args_;
};

}  // namespace eq::cli
