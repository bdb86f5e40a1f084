// Parsing JSON from untrusted files: every problem nlohmann::json reports while parsing (a syntax error, or a
// number beyond a double's range such as 1E400, which it reports as out_of_range, not parse_error) becomes one
// Error(InvalidJson) naming the file.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eq {

// Throws Error(InvalidJson) "<subject> not valid JSON (error at byte N)", or "(<problem>)" where the parser gives
// no position. `subject` names the file and, where needed, the part: "model.safetensors: header is".
nlohmann::json parseJson(std::string_view text, std::string_view subject);

// nlohmann::json's message without its tag: "key 'normalizers' not found" for
// "[json.exception.out_of_range.403] key 'normalizers' not found".
std::string_view jsonProblem(const nlohmann::json::exception& e);

// Typed members of a JSON object from a file the user may have edited: each getter throws Error(InvalidJson)
// "<label>: \"key\" is missing" or "... is not a string / number / ..." instead of nlohmann's type_error.
class JsonReader {
 public:
  JsonReader(const nlohmann::json& object, std::string label);
  bool has(const char* key) const;
  std::string string(const char* key) const;
  double number(const char* key) const;
  std::int64_t integer(const char* key) const;
  std::uint64_t unsignedInteger(const char* key) const;
  bool boolean(const char* key) const;
  std::vector<std::int64_t> integers(const char* key) const;
  const nlohmann::json& array(const char* key) const;
  const nlohmann::json& object(const char* key) const;
  const std::string& label() const { return label_; }

 private:
  const nlohmann::json& member(const char* key) const;
  [[noreturn]] void wrong(const char* key, const char* what) const;
  const nlohmann::json& j_;
  std::string label_;
};

}  // namespace eq
