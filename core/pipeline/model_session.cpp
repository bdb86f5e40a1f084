#include "pipeline/model_session.h"

#include "common/error.h"
#include "common/json.h"
#include "common/thread_pool.h"
#include "model/weight_source.h"

namespace eq {
namespace fs = std::filesystem;
namespace {

nlohmann::json embeddedJson(const EqzFile& f, const std::string& name) {
  const EqzSection* s = f.file(name);
  if (!s) return nullptr;
  const auto b = f.bytes(*s);
  return parseJson({reinterpret_cast<const char*>(b.data()), b.size()},
                   fmt::format("{} (embedded {}):", f.path().string(), name));
}

}  // namespace

std::unique_ptr<ModelSession> ModelSession::open(const fs::path& path, const SessionOptions& options) {
  auto s = std::unique_ptr<ModelSession>(new ModelSession());
  s->path_ = path;
  s->options_ = options;
  if (isEqzPath(path)) {
    s->kind_ = SourceKind::Eqz;
    s->eqz_ = std::make_unique<EqzFile>(EqzFile::open(path));
    s->config_ = eqzModelConfig(*s->eqz_);
    const auto gen = embeddedJson(*s->eqz_, "generation_config.json");
    if (!gen.is_null())
      s->generation_ = parseGenerationConfig(gen, path.string() + " (embedded generation_config.json)");
  } else {
    s->source_ = ModelSource::open(path, OpenOptions{options.keepGoing, options.progress});
    s->kind_ = s->source_->kind();
    s->config_ = s->source_->config();
    s->generation_ = s->source_->generationConfig();
  }
  if (options.contextLength > 0) s->loadEngine(options.contextLength);
  return s;
}

ModelSession::~ModelSession() = default;

fs::path ModelSession::folder() const { return source_ ? source_->root() : fs::path(); }

InspectReport ModelSession::inspect() const { return eqz_ ? inspectEqz(*eqz_) : inspectModel(*source_); }

bool ModelSession::hasTokenizer() const {
  if (tokenizer_) return true;
  if (eqz_) return eqz_->file("tokenizer.json") != nullptr;
  std::error_code ec;
  return fs::is_regular_file(folder() / "tokenizer.json", ec);
}

const text::Tokenizer& ModelSession::tokenizer() {
  if (tokenizer_) return *tokenizer_;
  const std::string label = path_.string();
  if (eqz_) {
    const auto j = embeddedJson(*eqz_, "tokenizer.json");
    if (j.is_null()) fail(Errc::NotFound, "{}: holds no tokenizer.json", label);
    tokenizer_.emplace(text::Tokenizer::fromJson(j, label + " (embedded tokenizer.json)"));
    return *tokenizer_;
  }
  if (!hasTokenizer()) {
    switch (kind_) {
      case SourceKind::SafetensorsFile: fail(Errc::NotFound, "{}: no tokenizer.json beside the file", label);
      case SourceKind::Archive: fail(Errc::NotFound, "{}: the archive holds no tokenizer.json", label);
      default: fail(Errc::NotFound, "{}: no tokenizer.json in the model folder", label);
    }
  }
  tokenizer_.emplace(text::Tokenizer::fromFile(folder() / "tokenizer.json"));
  return *tokenizer_;
}

text::Tokenizer ModelSession::takeTokenizer() {
  tokenizer();
  text::Tokenizer t = std::move(*tokenizer_);
  tokenizer_.reset();
  return t;
}

const std::optional<text::ChatTemplate>& ModelSession::chatTemplate() {
  if (!templateRead_) {
    // a lone .safetensors file: the files beside it (loadChatTemplate reads the folder of a file's path)
    template_ = text::loadChatTemplate(eqz_ ? path_ : kind_ == SourceKind::SafetensorsFile ? path_ : folder());
    templateRead_ = true;
  }
  return template_;
}

const text::ChatTemplate& ModelSession::requireChatTemplate() {
  if (!chatTemplate())
    fail(Errc::Unsupported, "{}: the model has no chat template (chat_template.jinja or tokenizer_config.json)",
         path_.string());
  return *template_;
}

std::vector<std::int32_t> ModelSession::eosIds() const {
  std::vector<std::int64_t> ids;
  if (generation_ && !generation_->eosTokenIds.empty()) ids = generation_->eosTokenIds;
  else if (config_) ids = config_->eosTokenIds;
  return {ids.begin(), ids.end()};
}

text::SamplingParams ModelSession::samplingDefaults() const {
  text::SamplingParams p{0.0f};
  const auto& g = generation_;
  if (!g || !g->doSample.value_or(false)) return p;
  p.temperature = static_cast<float>(g->temperature.value_or(1.0));
  p.topK = static_cast<int>(g->topK.value_or(50));  // transformers' default
  p.topP = static_cast<float>(g->topP.value_or(1.0));
  p.minP = static_cast<float>(g->minP.value_or(0.0));
  p.repetitionPenalty = static_cast<float>(g->repetitionPenalty.value_or(1.0));
  return p;
}

ModelSession::RunMemory ModelSession::runMemory(std::int64_t contextLength) const {
  RunMemory m;
  if (!config_) return m;
  const InspectReport r = inspect();
  for (const InspectTensor& t : r.tensors) {
    if (t.encoding == Encoding::EntQuant) {
      const std::uint64_t rows = t.shape.empty() || !t.shape.back() ? 0 : t.numel / static_cast<std::uint64_t>(t.shape.back());
      m.weights += t.numel + 4 * rows;
    } else if (t.encoding && *t.encoding != Encoding::Raw) {
      m.weights += 2 * t.numel;  // a baseline: decoded to bf16
    } else {
      m.weights += (t.dtype == DType::BF16 && t.shape.size() >= 2 ? 2 : 4) * t.numel;
    }
  }
  m.context = config_->maxPositions > 0 ? std::min(contextLength, config_->maxPositions) : contextLength;
  m.kvCache = 8ull * static_cast<std::uint64_t>(config_->numLayers) * static_cast<std::uint64_t>(m.context) *
              static_cast<std::uint64_t>(config_->numKvHeads * config_->headDim);
  return m;
}

ThreadPool& ModelSession::pool() {
  if (!pool_) pool_ = std::make_unique<ThreadPool>(options_.threads);
  return *pool_;
}

model::CausalLM& ModelSession::loadEngine(std::int64_t contextLength) {
  lm_.reset();
  if (!weights_) weights_ = eqz_ ? model::WeightSource::of(*eqz_, pool()) : model::WeightSource::of(*source_);
  model::LoadOptions lo;
  lo.contextLength = contextLength;
  lo.keepGoing = options_.keepGoing;
  lo.progress = options_.progress;
  lm_ = model::loadCausalLM(*weights_, pool(), lo);
  return *lm_;
}

model::CausalLM& ModelSession::engine() {
  if (!lm_) fail(Errc::InvalidArgument, "{}: the model is not loaded", path_.string());
  return *lm_;
}

}  // namespace eq
