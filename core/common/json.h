// Parsing JSON from untrusted files: every problem nlohmann::json reports while parsing (a syntax error, or a
// number beyond a double's range such as 1E400, which it reports as out_of_range, not parse_error) becomes one
// Error(InvalidJson) naming the file.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

namespace eq {

// Throws Error(InvalidJson) "<subject> not valid JSON (error at byte N)", or "(<problem>)" where the parser gives
// no position. `subject` names the file and, where needed, the part: "model.safetensors: header is".
nlohmann::json parseJson(std::string_view text, std::string_view subject);

// nlohmann::json's message without its tag: "key 'normalizers' not found" for
// "[json.exception.out_of_range.403] key 'normalizers' not found".
std::string_view jsonProblem(const nlohmann::json::exception& e);

}  // namespace eq
