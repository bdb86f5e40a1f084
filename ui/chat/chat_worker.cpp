#include "chat/chat_worker.h"

#include "common/error.h"
#include "common/units.h"

#include <QFileInfo>

#include <chrono>

namespace eq::ui {
namespace {

using Clock = std::chrono::steady_clock;

JobError errorOf(const Error& e) {
  return {QString::fromStdString(e.what()), static_cast<int>(e.code()), static_cast<int>(e.setting())};
}

}  // namespace

ChatWorker::ChatWorker() {
  qRegisterMetaType<eq::ui::ChatRequest>();
  qRegisterMetaType<eq::ui::ChatStats>();
  qRegisterMetaType<eq::ui::LoadedModel>();
  qRegisterMetaType<eq::ui::MemoryEstimate>();
  qRegisterMetaType<eq::ui::JobError>();
  qRegisterMetaType<eq::Progress>();
}

ChatWorker::~ChatWorker() = default;

namespace {
MemoryEstimate estimateOf(const ModelSession& s, const QString& path, qint64 context) {
  const auto m = s.runMemory(context);
  return {path, m.weights, m.kvCache, availableMemoryBytes(), m.context};
}
}  // namespace

void ChatWorker::estimate(const QString& path, qint64 context) {
  try {
    const auto s = ModelSession::open(path.toStdString());
    if (!s->config()) fail(Errc::BadConfig, "{}: no config.json, so the model cannot be run", path.toStdString());
    emit estimated(estimateOf(*s, path, context));
  } catch (const Error& e) {
    emit estimateFailed(path, QString::fromStdString(e.what()));
  }
}

void ChatWorker::load(std::uint64_t request, const QString& path, qint64 context, unsigned threads) {
  chat_.reset();
  session_.reset();
  try {
    SessionOptions so;
    so.threads = threads;
    so.keepGoing = [this, request] { return live(request); };
    auto last = Clock::now() - std::chrono::seconds(1);
    so.progress = [&](const Progress& p) {  // at most ten a second
      if (Clock::now() - last < std::chrono::milliseconds(100) && !p.itemDone) return;
      last = Clock::now();
      emit loadProgress(p);
    };
    session_ = ModelSession::open(path.toStdString(), so);
    if (session_->config()) {
      const MemoryEstimate m = estimateOf(*session_, path, context);
      emit estimated(m);
      if (!m.fits())
        fail(Errc::Unsupported, "{}: needs {} ({} of weights and {} of KV cache for {} tokens of context), but only {} "
             "of memory is available now; choose a shorter context, a compressed model, or close other programs",
             path.toStdString(), formatBytes(m.weights + m.kvCache), formatBytes(m.weights), formatBytes(m.kvCache),
             m.context, formatBytes(m.available));
    }
    session_->loadEngine(context);
    LoadedModel m;
    m.path = path;
    m.label = QFileInfo(path).fileName();
    m.contextLength = session_->engine().contextLength();
    m.weightBytes = session_->engine().weightBytes();
    m.defaults = session_->samplingDefaults();
    session_->tokenizer();  // a model without one cannot chat: say so now
    try {
      m.hasChatTemplate = session_->chatTemplate().has_value();
    } catch (const Error&) {
      m.hasChatTemplate = false;
    }
    if (m.hasChatTemplate)
      chat_ = std::make_unique<ChatSession>(session_->engine(), session_->tokenizer(), *session_->chatTemplate());
    emit loaded(m);
  } catch (const Error& e) {
    chat_.reset();
    session_.reset();
    emit loadFailed(errorOf(e));
  } catch (const std::bad_alloc&) {
    chat_.reset();
    session_.reset();
    emit loadFailed({QStringLiteral("out of memory while loading %1").arg(path), static_cast<int>(Errc::Io), 0});
  }
}

void ChatWorker::unload() {
  chat_.reset();
  session_.reset();
}

bool ChatWorker::applyRequest(const ChatRequest& r) {
  if (!chat_) {
    emit answerFailed({session_ ? tr("%1 has no chat template: it cannot answer chat messages (override the template, "
                                     "or use a chat model)").arg(QString::fromStdString(session_->path().string()))
                                : tr("no model is loaded"),
                       static_cast<int>(Errc::InvalidArgument), 0});
    return false;
  }
  if (r.templateOverride != templateOverride_) {
    try {
      chat_->setTemplate(r.templateOverride.isEmpty()
                             ? *session_->chatTemplate()
                             : text::ChatTemplate::fromSource(r.templateOverride.toStdString(), "the template override",
                                                              session_->chatTemplate()->bosToken(),
                                                              session_->chatTemplate()->eosToken()));
      templateOverride_ = r.templateOverride;
    } catch (const Error& e) {
      emit answerFailed(errorOf(e));
      return false;
    }
  }
  chat_->setSystem(r.system.toStdString());
  return true;
}

// Text reaches the GUI at most this often (ms): each delta re-lays out the answer's Markdown on the GUI thread. 80 ms
// was tried against this 30 on the 1.1B model (about 14 tok/s, so a delta per token either way) and changed neither
// the GUI thread's CPU (3 %) nor the decode speed (docs/BENCHMARKS.md, "Chat pane").
constexpr int kDeltaInterval = 30;

void ChatWorker::answer(std::uint64_t request, const QString& text, const ChatRequest& r) {
  emit answerStarted();
  GenerateOptions o;
  o.maxTokens = r.maxTokens;
  o.sampling = r.sampling;
  o.eosIds = session_->eosIds();
  o.keepGoing = [this, request] { return live(request); };
  QString pending;
  auto last = Clock::now();
  const auto start = Clock::now();
  double firstToken = 0;
  o.onText = [&](const std::string& piece) {
    if (firstToken == 0) firstToken = std::chrono::duration<double>(Clock::now() - start).count();
    pending += QString::fromStdString(piece);
    if (Clock::now() - last >= std::chrono::milliseconds(kDeltaInterval)) {
      emit delta(pending);
      pending.clear();
      last = Clock::now();
    }
  };
  try {
    const ChatTurn t = chat_->send(text.toStdString(), o);
    if (!pending.isEmpty()) emit delta(pending);
    ChatStats s;
    s.promptTokens = t.result.promptTokens;
    s.reusedTokens = t.reusedTokens;
    s.generatedTokens = static_cast<std::int64_t>(t.result.ids.size());
    s.promptSeconds = t.result.promptSeconds;
    s.generationSeconds = t.result.generationSeconds;
    s.firstTokenSeconds = firstToken > 0 ? firstToken : t.result.promptSeconds;
    s.contextUsed = chat_->contextUsed();
    s.contextLength = session_->engine().contextLength();
    s.droppedMessages = t.droppedMessages;
    s.stopReason = QString::fromStdString(std::string(stopReasonName(t.result.stopReason)));
    emit answered(s);
  } catch (const Error& e) {
    if (!pending.isEmpty()) emit delta(pending);
    emit answerFailed(errorOf(e));
  }
}

void ChatWorker::send(std::uint64_t request, const QString& text, const ChatRequest& r) {
  if (!live(request)) return emit answerFailed({tr("stopped"), static_cast<int>(Errc::Cancelled), 0});
  if (applyRequest(r)) answer(request, text, r);
}

void ChatWorker::resend(std::uint64_t request, const QString& replacement, const ChatRequest& r) {
  if (!live(request)) return emit answerFailed({tr("stopped"), static_cast<int>(Errc::Cancelled), 0});
  if (!applyRequest(r)) return;
  const QString last = QString::fromStdString(chat_->undoLastTurn());
  const QString text = replacement.isEmpty() ? last : replacement;
  if (text.isEmpty()) {
    emit answerFailed({tr("there is no message to send again"), static_cast<int>(Errc::InvalidArgument), 0});
    return;
  }
  answer(request, text, r);
}

void ChatWorker::undoLast() {
  if (chat_) chat_->undoLastTurn();
}

void ChatWorker::clear() {
  if (chat_) chat_->clear();
}

void ChatWorker::renderPrompt(const QString& text, const ChatRequest& r) {
  if (!chat_) {
    emit promptFailed(tr("no chat model is loaded"));
    return;
  }
  try {
    const auto previous = chat_->chatTemplate();
    chat_->setTemplate(r.templateOverride.isEmpty()
                           ? *session_->chatTemplate()
                           : text::ChatTemplate::fromSource(r.templateOverride.toStdString(), "the template override",
                                                            previous.bosToken(), previous.eosToken()));
    templateOverride_ = r.templateOverride;
    chat_->setSystem(r.system.toStdString());
    emit promptRendered(QString::fromStdString(chat_->renderPrompt(text.toStdString())));
  } catch (const Error& e) {
    emit promptFailed(QString::fromStdString(e.what()));
  }
}

}  // namespace eq::ui
