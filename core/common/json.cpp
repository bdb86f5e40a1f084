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

JsonReader::JsonReader(const nlohmann::json& object, std::string label) : j_(object), label_(std::move(label)) {
  if (!j_.is_object()) fail(Errc::InvalidJson, "{}: not a JSON object", label_);
}

bool JsonReader::has(const char* key) const { return j_.contains(key); }

void JsonReader::wrong(const char* key, const char* what) const {
  fail(Errc::InvalidJson, "{}: \"{}\" is not {}", label_, key, what);
}

const nlohmann::json& JsonReader::member(const char* key) const {
  const auto it = j_.find(key);
  if (it == j_.end()) fail(Errc::InvalidJson, "{}: \"{}\" is missing", label_, key);
  return *it;
}

std::string JsonReader::string(const char* key) const {
  const auto& v = member(key);
  if (!v.is_string()) wrong(key, "a string");
  return v.get<std::string>();
}

double JsonReader::number(const char* key) const {
  const auto& v = member(key);
  if (!v.is_number()) wrong(key, "a number");
  return v.get<double>();
}

std::int64_t JsonReader::integer(const char* key) const {
  const auto& v = member(key);
  if (!v.is_number_integer()) wrong(key, "an integer");
  return v.get<std::int64_t>();
}

std::uint64_t JsonReader::unsignedInteger(const char* key) const {
  const auto& v = member(key);
  if (!v.is_number_unsigned()) wrong(key, "a non-negative integer");
  return v.get<std::uint64_t>();
}

bool JsonReader::boolean(const char* key) const {
  const auto& v = member(key);
  if (!v.is_boolean()) wrong(key, "true or false");
  return v.get<bool>();
}

std::vector<std::int64_t> JsonReader::integers(const char* key) const {
  const auto& v = array(key);
  std::vector<std::int64_t> out;
  for (const auto& x : v) {
    if (!x.is_number_integer()) wrong(key, "a list of integers");
    out.push_back(x.get<std::int64_t>());
  }
  return out;
}

const nlohmann::json& JsonReader::array(const char* key) const {
  const auto& v = member(key);
  if (!v.is_array()) wrong(key, "a list");
  return v;
}

const nlohmann::json& JsonReader::object(const char* key) const {
  const auto& v = member(key);
  if (!v.is_object()) wrong(key, "an object");
  return v;
}

}  // namespace eq
