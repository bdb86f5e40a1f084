// One model opened to run or to look at, whatever the user pointed at: a HuggingFace folder, one .safetensors file
// (with the config.json, tokenizer and template beside it, if any), an archive of a model folder, or an .eqz file.
// The path is resolved once (an archive is unpacked once); the session owns what was opened and, on request, the
// weights, the CPU engine, the tokenizer, the end-of-generation ids, the sampling defaults and the chat template.
// The CLI's run commands and the GUI's chat pane stand on it, so every input kind behaves the same everywhere.
#pragma once

#include "common/progress.h"
#include "format/eqz.h"
#include "model/causal_lm.h"
#include "model/model_source.h"
#include "pipeline/inspect.h"
#include "text/chat_template.h"
#include "text/sampling.h"
#include "text/tokenizer.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace eq {

class ThreadPool;

struct SessionOptions {
  // Load the weights into the CPU engine now, for this many positions of context (clamped to the model's); 0: do
  // not (tokenize, inspect, or load later with loadEngine).
  std::int64_t contextLength = 0;
  unsigned threads = 0;   // the engine's pool; 0: all hardware threads
  ProgressFn progress;    // Phase::Extract while an archive is unpacked, Phase::Load while the engine loads
  KeepGoingFn keepGoing;  // false: Error(Cancelled)
};

class ModelSession {
 public:
  // Errors name the path: Error(NotFound) for nothing there, Error(Unsupported) for another kind of file, and the
  // loaders' errors (corrupt files, configs, archives) as they are.
  static std::unique_ptr<ModelSession> open(const std::filesystem::path& path, const SessionOptions& options = {});
  ~ModelSession();
  ModelSession(const ModelSession&) = delete;
  ModelSession& operator=(const ModelSession&) = delete;

  SourceKind kind() const { return kind_; }
  const std::filesystem::path& path() const { return path_; }
  const ModelSource* checkpoint() const { return source_.get(); }  // folder, file, archive; null for .eqz
  const EqzFile* eqz() const { return eqz_.get(); }                // .eqz; null otherwise
  const ModelConfig* config() const { return config_ ? &*config_ : nullptr; }
  const std::optional<GenerationConfig>& generationConfig() const { return generation_; }
  InspectReport inspect() const;

  // The tokenizer, or Error(NotFound) saying where none was found: "<folder>: no tokenizer.json in the model
  // folder", "<file>.safetensors: no tokenizer.json beside the file", "<archive>: the archive holds no
  // tokenizer.json", "<file>.eqz: holds no tokenizer.json". Read on first use.
  bool hasTokenizer() const;
  const text::Tokenizer& tokenizer();
  // The tokenizer moved out of the session (which reads it again if asked): for callers that keep only it.
  text::Tokenizer takeTokenizer();
  // The chat template (chat_template.jinja or tokenizer_config.json; embedded ones for .eqz), or none. Read on first
  // use; a broken template throws its error then.
  const std::optional<text::ChatTemplate>& chatTemplate();
  // The template, or Error(Unsupported) "<path>: the model has no chat template (chat_template.jinja or
  // tokenizer_config.json)".
  const text::ChatTemplate& requireChatTemplate();
  // End-of-generation ids: generation_config.json's eos ids, else config.json's.
  std::vector<std::int32_t> eosIds() const;
  // The sampling generation_config.json asks for (do_sample, temperature, top_k, top_p, min_p, repetition_penalty);
  // greedy when it says do_sample false or has none.
  text::SamplingParams samplingDefaults() const;

  // What loading the engine for `contextLength` positions will take, before it runs: the weights as the engine
  // holds them (an .eqz file's codes at 1 byte per weight plus a float scale per row, kept bf16 tensors at 2 bytes,
  // other dtypes as float32) and the float32 KV cache. Nothing when the model has no config.json.
  struct RunMemory {
    std::uint64_t weights = 0, kvCache = 0;
    std::int64_t context = 0;  // clamped to the model's
    std::uint64_t total() const { return weights + kvCache; }
  };
  RunMemory runMemory(std::int64_t contextLength) const;

  // Loads the weights into the CPU engine (an .eqz file's streams are decoded here) with the session's progress and
  // cancel; again with another context length reloads. Error(BadConfig) without config.json, Error(Unsupported)
  // for an architecture the engine does not run.
  model::CausalLM& loadEngine(std::int64_t contextLength);
  bool engineLoaded() const { return lm_ != nullptr; }
  model::CausalLM& engine();  // Error(InvalidArgument) before loadEngine
  ThreadPool& pool();

 private:
  ModelSession() = default;
  std::filesystem::path folder() const;  // where a checkpoint's files are (an archive's unpacked root)

  SourceKind kind_ = SourceKind::Folder;
  std::filesystem::path path_;
  SessionOptions options_;
  std::unique_ptr<ModelSource> source_;
  std::unique_ptr<EqzFile> eqz_;
  std::optional<ModelConfig> config_;
  std::optional<GenerationConfig> generation_;
  std::optional<text::Tokenizer> tokenizer_;
  bool templateRead_ = false;
  std::optional<text::ChatTemplate> template_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<model::WeightSource> weights_;
  std::unique_ptr<model::CausalLM> lm_;
};

}  // namespace eq
