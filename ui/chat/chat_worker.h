// The chat engine: one model loaded in the CPU engine, on a thread of its own (a long-lived QObject moved to its
// QThread, talked to with queued calls only). It streams an answer's text in pieces at most every 30 ms, reports
// speed and context per answer, and stops within a layer when asked, during the prompt's prefill as well as during
// generation: stop() sets a flag the engine reads between layers, from any thread.
#pragma once

#include "jobs/background_job.h"
#include "pipeline/chat_session.h"
#include "pipeline/model_session.h"

#include <QObject>
#include <QString>

#include <atomic>
#include <memory>
#include <optional>

namespace eq::ui {

// What an answer is asked with.
struct ChatRequest {
  QString system;
  text::SamplingParams sampling{0.0f};
  std::int64_t maxTokens = 512;
  QString templateOverride;  // non-empty: this template instead of the model's, for this conversation
};

// What an answer cost and left.
struct ChatStats {
  std::int64_t promptTokens = 0, reusedTokens = 0, generatedTokens = 0;
  double promptSeconds = 0, generationSeconds = 0, firstTokenSeconds = 0;
  std::int64_t contextUsed = 0, contextLength = 0;
  int droppedMessages = 0;  // oldest messages left out to fit the context
  QString stopReason;       // eos, stop_string, max_tokens, context_full, stopped
  double promptTokensPerSecond() const { return promptSeconds > 0 ? promptTokens / promptSeconds : 0; }
  double tokensPerSecond() const { return generationSeconds > 0 ? generatedTokens / generationSeconds : 0; }
};

// What running a model will take, against what the machine has.
struct MemoryEstimate {
  QString path;
  std::uint64_t weights = 0, kvCache = 0, available = 0;
  std::int64_t context = 0;
  bool fits() const { return weights + kvCache <= available; }
};

// What the loaded model is.
struct LoadedModel {
  QString path, label;
  std::int64_t contextLength = 0;
  std::uint64_t weightBytes = 0;
  bool hasChatTemplate = false;
  text::SamplingParams defaults{0.0f};  // what its generation_config.json asks for
};

class ChatWorker : public QObject {
  Q_OBJECT

 public:
  ChatWorker();
  ~ChatWorker() override;
  // Any thread: every request numbered up to `request` stops at the engine's next check (between layers), also one
  // still queued. Requests are numbered by the caller, rising.
  void stopThrough(std::uint64_t request) {
    std::uint64_t seen = cancelledThrough_.load();
    while (seen < request && !cancelledThrough_.compare_exchange_weak(seen, request)) {
    }
  }

 public slots:
  // Opens `path` (headers only) and reports what loading it for `context` positions would take (estimated).
  void estimate(const QString& path, qint64 context);
  // Loads the model; refuses (loadFailed) where it does not fit in the memory available now.
  void load(std::uint64_t request, const QString& path, qint64 context, unsigned threads);
  void unload();
  // Sends `text` as the user's message and answers it.
  void send(std::uint64_t request, const QString& text, const eq::ui::ChatRequest& options);
  // Takes back the last exchange and answers its message again (with `replacement` instead, when given).
  void resend(std::uint64_t request, const QString& replacement, const eq::ui::ChatRequest& options);
  void clear();
  void undoLast();  // takes back the last exchange without answering (to edit its message)
  // The prompt the template renders for the conversation plus `text` (promptRendered, or promptFailed).
  void renderPrompt(const QString& text, const eq::ui::ChatRequest& request);

 signals:
  void estimated(const eq::ui::MemoryEstimate& estimate);
  void estimateFailed(const QString& path, const QString& error);
  void loadProgress(const eq::Progress& progress);
  void loaded(const eq::ui::LoadedModel& model);
  void loadFailed(const eq::ui::JobError& error);
  void answerStarted();
  void delta(const QString& text);
  void answered(const eq::ui::ChatStats& stats);
  void answerFailed(const eq::ui::JobError& error);  // code Cancelled when stopped (the text so far stays)
  void promptRendered(const QString& prompt);
  void promptFailed(const QString& error);

 private:
  void answer(std::uint64_t request, const QString& text, const ChatRequest& options);
  bool applyRequest(const ChatRequest& options);
  bool live(std::uint64_t request) const { return request > cancelledThrough_.load(); }

  std::atomic<std::uint64_t> cancelledThrough_{0};
  std::unique_ptr<ModelSession> session_;
  std::unique_ptr<ChatSession> chat_;
  QString templateOverride_;
};

}  // namespace eq::ui

Q_DECLARE_METATYPE(eq::ui::ChatRequest)
Q_DECLARE_METATYPE(eq::ui::ChatStats)
Q_DECLARE_METATYPE(eq::ui::LoadedModel)
Q_DECLARE_METATYPE(eq::ui::MemoryEstimate)
