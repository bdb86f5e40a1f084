#include "common/json.h"

#include "common/error.h"

namespace eq {

nlohmann::json parseJson(std::string_view text, std::string_view subject) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    fail(Errc::InvalidJson, "{} not valid JSON (error at byte {})", subject, e.byte);
  } catch (const nlohmann::json::exception& e) {  // out_of_range.406: "number overflow parsing '1E400'"
    fail(Errc::InvalidJson, "{} not valid JSON ({})", subject, jsonProblem(e));
  }
}

std::string_view jsonProblem(const nlohmann::json::exception& e) {
  std::string_view what = e.what();
  if (const auto tag = what.find("] "); what.starts_with("[json.exception.") && tag != std::string_view::npos)
    what.remove_prefix(tag + 2);
  return what;
}

}  // namespace eq
