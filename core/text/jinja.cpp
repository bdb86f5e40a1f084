// Template's entry points (jinja.h); the interpreter itself is in jinja_*.cpp (jinja_internal.h).
#include "text/jinja.h"
#include "text/jinja_internal.h"

#include "common/error.h"

#include <utf8proc.h>

namespace eq::text::jinja {

struct Template::Impl : detail::TemplateData {};

Template::Template() = default;
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;

const std::string& Template::label() const { return impl_->label; }

Template Template::parse(std::string_view source, std::string label) {
  auto p = reinterpret_cast<const utf8proc_uint8_t*>(source.data());
  for (std::size_t k = 0; k < source.size();) {
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t n = utf8proc_iterate(p + k, static_cast<utf8proc_ssize_t>(source.size() - k), &cp);
    if (n <= 0) eq::fail(Errc::BadConfig, "{}: not valid UTF-8 (at byte {})", label, k);
    k += static_cast<std::size_t>(n);
  }
  auto impl = std::make_shared<Impl>();
  impl->label = std::move(label);
  try {
    impl->body = detail::parseTokens(detail::tokenize(detail::normalizeSource(source)));
  } catch (const detail::SyntaxFailure& f) {
    eq::fail(Errc::BadConfig, "{}: syntax error at line {}: {}", impl->label, f.line, f.message);
  } catch (const detail::UnsupportedFailure& f) {
    eq::fail(Errc::Unsupported, "{}: line {}: {}", impl->label, f.line, f.message);
  }
  Template t;
  t.impl_ = std::move(impl);
  return t;
}

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  detail::Interp in(*impl_, options);
  try {
    return in.render(context);
  } catch (const detail::RaiseFailure& f) {
    eq::fail(Errc::InvalidArgument, "{}: {}", impl_->label, f.message);
  } catch (const detail::RuntimeFailure& f) {
    eq::fail(Errc::InvalidArgument, "{}: line {}: {}", impl_->label, in.line(), f.message);
  }
}

}  // namespace eq::text::jinja
