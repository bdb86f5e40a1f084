// Llama 2/3/3.1/3.2, Mistral, Qwen2/2.5 (q/k/v bias), Qwen3 (per-head q/k RMSNorm), Phi-3 (fused qkv_proj and
// gate_up_proj), Mixtral (sparse MoE MLP, top-k of softmax routing) and Gemma / Gemma 2 ((1 + w) RMSNorm,
// embeddings scaled by sqrt(hidden), GeGLU, Gemma 2's sandwich norms, logit soft-capping and alternating sliding
// window): pre-norm decoder blocks with RMSNorm, rotary attention with grouped KV heads, gated MLPs.
// Matches HF transformers in float32.
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/arch.h"
#include "model/attention.h"
#include "model/causal_lm.h"
#include "model/kv_cache.h"
#include "model/rope.h"
#include "model/vector_math.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <optional>

namespace eq::model {
namespace {

struct Expert {
  Linear gate, up, down;  // Mixtral's w1, w3, w2
};

struct Block {
  std::vector<float> inputNorm, postNorm, qNorm, kNorm;
  std::vector<float> preFfnNorm, postFfnNorm;  // Gemma 2: postNorm follows attention, these wrap the MLP
  std::optional<std::int64_t> window;          // sliding window of this layer
  Linear q, k, v, o, gate, up, down;
  Linear router;                // MoE only
  std::vector<Expert> experts;  // MoE only
};

void rmsNorm(const float* x, const float* w, std::int64_t n, double eps, float* out) {
  const double ss = vmath::sumSquares(x, n);
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + static_cast<float>(eps));
  for (std::int64_t i = 0; i < n; ++i) out[i] = w[i] * (x[i] * inv);
}

class LlamaFamily final : public CausalLM {
 public:
  LlamaFamily(const WeightSource& ws, ThreadPool& pool, const LoadOptions& o)
      : cfg_(ws.config()), pool_(pool), rope_(cfg_.rope, cfg_.headDim, cfg_.maxPositions, ws.label()),
        ctx_(cfg_.maxPositions > 0 ? std::min(o.contextLength, cfg_.maxPositions) : o.contextLength),
        cache_(cfg_.numLayers, ctx_, cfg_.numKvHeads * cfg_.headDim) {
    const FamilyInfo* family = familyOf(cfg_.modelType);
    gemma_ = family && family->gemmaNorms;
    gelu_ = cfg_.hiddenAct.starts_with("gelu");
    attnScale_ = 1.0f / std::sqrt(static_cast<float>(cfg_.queryPreAttnScalar > 0 ? cfg_.queryPreAttnScalar
                                                                                 : static_cast<double>(cfg_.headDim)));
    const std::string embedName(names::kEmbedTokens), normName(names::kFinalNorm), headName(names::kLmHead);
    embed_ = ws.linear(embedName);
    if (embed_.rows != cfg_.vocabSize || embed_.cols != cfg_.hiddenSize)
      fail(Errc::ShapeMismatch, "{}: {} is [{}, {}], config says [{}, {}]", ws.label(), embedName, embed_.rows,
           embed_.cols, cfg_.vocabSize, cfg_.hiddenSize);
    finalNorm_ = norm(ws, normName);
    expectSize(ws, finalNorm_, cfg_.hiddenSize, normName);
    if (ws.has(headName)) {
      lmHead_ = ws.linear(headName);
      expectShape(ws, lmHead_, cfg_.vocabSize, cfg_.hiddenSize, headName);
    } else if (!cfg_.tieWordEmbeddings) {
      fail(Errc::MissingTensor, "{}: no {} and the embeddings are not tied", ws.label(), headName);
    }
    PhaseProgress progress(o.progress, Phase::Load, Unit::Blocks, static_cast<std::uint64_t>(cfg_.numLayers));
    for (std::int64_t l = 0; l < cfg_.numLayers; ++l) {
      if (o.keepGoing && !o.keepGoing()) fail(Errc::Cancelled, "loading cancelled");
      blocks_.push_back(loadBlock(ws, l));
      progress.report(static_cast<std::uint64_t>(l + 1));
    }
    cache_.allocate();
  }

  std::vector<float> forward(std::span<const std::int32_t> ids, const std::function<bool()>& keepGoing,
                             LogitRows rows) override {
    const std::int64_t n = static_cast<std::int64_t>(ids.size());
    if (pos_ + n > ctx_)
      fail(Errc::InvalidArgument, "context full: {} tokens in the cache + {} new exceed the context length {}", pos_, n, ctx_);
    std::vector<float> x = embed(ids);
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
      if (keepGoing && !keepGoing()) fail(Errc::Cancelled, "generation cancelled");
      runBlock(blocks_[l], static_cast<std::int64_t>(l), x.data(), n);
    }
    std::vector<float> logits = rows == LogitRows::Last && n > 0 ? head(x.data() + (n - 1) * cfg_.hiddenSize, 1)
                                                                 : head(x.data(), n);
    pos_ += n;
    return logits;
  }

  std::uint64_t batchCacheBytes(std::int64_t sequences) const override { return cache_.batchBytes(sequences); }

  void beginBatch(std::int64_t sequences) override {
    cache_.beginBatch(sequences);
    pos_ = 0;
  }

  std::vector<float> forwardBatch(std::span<const std::int32_t> ids) override {
    const std::int64_t n = static_cast<std::int64_t>(ids.size());
    if (n != cache_.batch())
      fail(Errc::InvalidArgument, "a batch of {} sequences was begun, {} tokens were given", cache_.batch(), n);
    if (pos_ + 1 > ctx_) fail(Errc::InvalidArgument, "context full: {} tokens in each sequence's cache", pos_);
    std::vector<float> x = embed(ids);
    struct Batched {
      bool& flag;
      explicit Batched(bool& f) : flag(f) { flag = true; }
      ~Batched() { flag = false; }
    } batched{inBatch_};
    for (std::size_t l = 0; l < blocks_.size(); ++l) runBlock(blocks_[l], static_cast<std::int64_t>(l), x.data(), n);
    std::vector<float> logits = head(x.data(), n);
    pos_ += 1;
    return logits;
  }

  std::vector<float> head(const float* x, std::int64_t n) const override {
    const std::int64_t h = cfg_.hiddenSize;
    std::vector<float> normed(static_cast<std::size_t>(n * h));
    for (std::int64_t i = 0; i < n; ++i) rmsNorm(x + i * h, finalNorm_.data(), h, cfg_.normEps, normed.data() + i * h);
    std::vector<float> logits(static_cast<std::size_t>(n * cfg_.vocabSize));
    (lmHead_.empty() ? embed_ : lmHead_).forward(normed.data(), n, logits.data(), pool_);
    if (cfg_.finalLogitSoftcap > 0) {
      const float cap = static_cast<float>(cfg_.finalLogitSoftcap);
      for (auto& v : logits) v = std::tanh(v / cap) * cap;
    }
    return logits;
  }

  std::vector<float> embed(std::span<const std::int32_t> ids) const override {
    const std::int64_t n = static_cast<std::int64_t>(ids.size()), h = cfg_.hiddenSize;
    std::vector<float> x(static_cast<std::size_t>(n * h));
    for (std::int64_t i = 0; i < n; ++i) {
      if (ids[i] < 0 || ids[i] >= cfg_.vocabSize)
        fail(Errc::InvalidArgument, "token id {} is outside the vocabulary (0..{})", ids[i], cfg_.vocabSize - 1);
      embed_.row(ids[i], x.data() + i * h);
      if (gemma_) {  // HF multiplies by sqrt(hidden) rounded to the activation dtype (float32 here)
        const float s = static_cast<float>(std::sqrt(static_cast<double>(h)));
        for (std::int64_t t = 0; t < h; ++t) x[i * h + t] *= s;
      }
    }
    return x;
  }

  std::int64_t numLayers() const override { return static_cast<std::int64_t>(blocks_.size()); }
  std::int64_t hiddenSize() const override { return cfg_.hiddenSize; }

  void runLayer(std::int64_t layer, float* x, std::int64_t n, int stopAfterStage, BlockProgress* progress) override {
    if (layer < 0 || layer >= numLayers())
      fail(Errc::InvalidArgument, "layer {} is out of range (the model has {})", layer, numLayers());
    if (n > ctx_) fail(Errc::InvalidArgument, "{} tokens exceed the context length {}", n, ctx_);
    pos_ = 0;
    runBlock(blocks_[static_cast<std::size_t>(layer)], layer, x, n, stopAfterStage, progress);
  }

  void replaceWeight(const std::string& name, const Linear& w) override {
    // Every Linear cut from `name` (one, or the slices of a fused weight, in row order).
    std::vector<Linear*> parts;
    for (auto& b : blocks_) {
      for (Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down, &b.router})
        if (!l->empty() && l->source == name) parts.push_back(l);
      for (auto& e : b.experts)
        for (Linear* l : {&e.gate, &e.up, &e.down})
          if (l->source == name) parts.push_back(l);
    }
    if (parts.empty()) fail(Errc::MissingTensor, "the model has no linear layer \"{}\"", name);
    std::int64_t rows = 0;
    for (const Linear* l : parts) rows += l->rows;
    if (w.rows != rows || w.cols != parts.front()->cols)
      fail(Errc::ShapeMismatch, "\"{}\" is [{}, {}], the replacement [{}, {}]", name, rows, parts.front()->cols, w.rows,
           w.cols);
    std::int64_t r0 = 0;
    for (Linear* l : parts) {
      Linear cut = parts.size() == 1 ? w : w.sliceRows(r0, r0 + l->rows);
      r0 += l->rows;
      cut.bias = std::move(l->bias);
      cut.source = name;
      *l = std::move(cut);
    }
  }

  void setInputObserver(InputObserver observer) override { observer_ = std::move(observer); }
  void reset() override {
    pos_ = 0;
    if (cache_.batch()) cache_.endBatch();  // a batch's caches go
  }
  void truncate(std::int64_t n) override { pos_ = std::clamp<std::int64_t>(n, 0, pos_); }
  std::int64_t position() const override { return pos_; }
  std::int64_t vocabSize() const override { return cfg_.vocabSize; }
  std::int64_t contextLength() const override { return ctx_; }
  std::uint64_t weightBytes() const override {
    std::uint64_t b = embed_.bytes() + lmHead_.bytes();
    for (const auto& k : blocks_) {
      b += k.q.bytes() + k.k.bytes() + k.v.bytes() + k.o.bytes() + k.gate.bytes() + k.up.bytes() + k.down.bytes();
      for (const auto& e : k.experts) b += e.gate.bytes() + e.up.bytes() + e.down.bytes();
    }
    return b;
  }

 private:
  // Gemma's RMSNorm scales by (1 + w): fold the 1 in once at load.
  std::vector<float> norm(const WeightSource& ws, const std::string& name) const {
    std::vector<float> w = ws.floats(name);
    if (gemma_)
      for (auto& x : w) x += 1.0f;
    return w;
  }

  // A hostile or broken checkpoint may hold tensors whose shapes disagree with config.json or with each other;
  // the kernels trust both, so every shape is checked against what config.json implies before the model runs.
  // `w` named by its checkpoint tensor (a fused one for Phi-3's slices).
  static void expectShape(const WeightSource& ws, const Linear& w, std::int64_t rows, std::int64_t cols,
                          const std::string& name = {}) {
    if (w.rows != rows || w.cols != cols)
      fail(Errc::ShapeMismatch, "{}: {} is [{}, {}], config.json implies [{}, {}]", ws.label(),
           name.empty() ? w.source : name, w.rows, w.cols, rows, cols);
    if (!w.bias.empty() && static_cast<std::int64_t>(w.bias.size()) != rows)
      fail(Errc::ShapeMismatch, "{}: the bias of {} has {} values for {} rows", ws.label(),
           name.empty() ? w.source : name, w.bias.size(), rows);
  }
  static void expectSize(const WeightSource& ws, const std::vector<float>& v, std::int64_t n, const std::string& name) {
    if (static_cast<std::int64_t>(v.size()) != n)
      fail(Errc::ShapeMismatch, "{}: {} has {} values, config.json implies {}", ws.label(), name, v.size(), n);
  }

  Block loadBlock(const WeightSource& ws, std::int64_t l) {
    namespace n = names;
    auto name = [&](std::string_view within) { return blockTensorName(l, within); };
    auto weight = [&](std::string_view module) { return name(module) + ".weight"; };
    Block b;
    b.inputNorm = norm(ws, name(n::kInputNorm));
    b.postNorm = norm(ws, name(n::kPostAttentionNorm));
    if (ws.has(name(n::kPreFeedforwardNorm))) {
      b.preFfnNorm = norm(ws, name(n::kPreFeedforwardNorm));
      b.postFfnNorm = norm(ws, name(n::kPostFeedforwardNorm));
    }
    const bool sliding = cfg_.layerTypes.empty() ? cfg_.slidingWindow.has_value()
                                                 : cfg_.layerTypes[static_cast<std::size_t>(l)] == "sliding_attention";
    if (sliding && cfg_.slidingWindow) b.window = cfg_.slidingWindow;
    auto lin = [&](std::string_view module) {
      Linear w = ws.linear(weight(module));
      w.source = weight(module);
      if (ws.has(name(module) + ".bias")) w.bias = ws.floats(name(module) + ".bias");
      return w;
    };
    const std::int64_t qd0 = cfg_.numHeads * cfg_.headDim, kvd0 = cfg_.numKvHeads * cfg_.headDim;
    if (ws.has(weight(n::kQkv))) {  // Phi-3: rows are q, then k, then v
      const Linear qkv = lin(n::kQkv);
      expectShape(ws, qkv, qd0 + 2 * kvd0, cfg_.hiddenSize);
      b.q = qkv.sliceRows(0, qd0);
      b.k = qkv.sliceRows(qd0, qd0 + kvd0);
      b.v = qkv.sliceRows(qd0 + kvd0, qd0 + 2 * kvd0);
    } else {
      b.q = lin(n::kQ);
      b.k = lin(n::kK);
      b.v = lin(n::kV);
    }
    b.o = lin(n::kO);
    if (ws.has(weight(n::kRouter))) {  // Mixtral
      b.router = lin(n::kRouter);
      if (b.router.rows < 1) fail(Errc::ShapeMismatch, "{}: {} has no rows (no experts)", ws.label(), b.router.source);
      for (std::int64_t e = 0; e < b.router.rows; ++e) {
        const std::string x = fmt::format("{}{}.", n::kExpertPrefix, e);
        b.experts.push_back({lin(x + std::string(n::kExpertGate)), lin(x + std::string(n::kExpertUp)),
                             lin(x + std::string(n::kExpertDown))});
      }
    } else if (ws.has(weight(n::kGateUp))) {  // Phi-3: gate rows, then up rows
      const Linear gu = lin(n::kGateUp);
      b.gate = gu.sliceRows(0, gu.rows / 2);
      b.up = gu.sliceRows(gu.rows / 2, gu.rows);
      b.down = lin(n::kDown);
    } else {
      b.gate = lin(n::kGate);
      b.up = lin(n::kUp);
      b.down = lin(n::kDown);
    }
    if (cfg_.qkNorm) {
      b.qNorm = norm(ws, name(n::kQNorm));
      b.kNorm = norm(ws, name(n::kKNorm));
    }
    const std::int64_t qd = cfg_.numHeads * cfg_.headDim, kvd = cfg_.numKvHeads * cfg_.headDim, h = cfg_.hiddenSize;
    expectShape(ws, b.q, qd, h);
    expectShape(ws, b.k, kvd, h);
    expectShape(ws, b.v, kvd, h);
    expectShape(ws, b.o, h, qd);
    expectSize(ws, b.inputNorm, h, name(n::kInputNorm));
    expectSize(ws, b.postNorm, h, name(n::kPostAttentionNorm));
    if (!b.preFfnNorm.empty() || !b.postFfnNorm.empty()) {
      expectSize(ws, b.preFfnNorm, h, name(n::kPreFeedforwardNorm));
      expectSize(ws, b.postFfnNorm, h, name(n::kPostFeedforwardNorm));
    }
    if (cfg_.qkNorm) {
      expectSize(ws, b.qNorm, cfg_.headDim, name(n::kQNorm));
      expectSize(ws, b.kNorm, cfg_.headDim, name(n::kKNorm));
    }
    if (!b.experts.empty()) {
      expectShape(ws, b.router, b.router.rows, h);  // one row per expert
      const std::int64_t inner = b.experts.front().gate.rows;
      for (const auto& e : b.experts) {
        expectShape(ws, e.gate, inner, h);
        expectShape(ws, e.up, inner, h);
        expectShape(ws, e.down, h, inner);
      }
    } else {
      const std::int64_t inner = b.gate.rows;
      expectShape(ws, b.gate, inner, h);
      expectShape(ws, b.up, inner, h);
      expectShape(ws, b.down, h, inner);
    }
    return b;
  }

  // stop >= 0: return once the inputs of that calibration stage have been observed; keep: go on from and leave a
  // BlockProgress (runLayer).
  void runBlock(const Block& b, std::int64_t layer, float* x, std::int64_t n, int stop = -1,
                BlockProgress* keep = nullptr) {
    const std::int64_t h = cfg_.hiddenSize, qd = cfg_.numHeads * cfg_.headDim;
    const std::size_t xs = static_cast<std::size_t>(n * h);
    const bool keeps = keep && b.experts.empty();
    BlockProgress from;  // where this pass starts: stage -1, the block's input
    if (keep) {
      if (keeps && keep->stage >= 1 && (stop < 0 || stop > keep->stage)) from = std::move(*keep);
      *keep = {};  // used, or stale for this pass
    }
    std::vector<float> xn(xs), attn;
    if (from.stage < 1) {
      for (std::int64_t i = 0; i < n; ++i) rmsNorm(x + i * h, b.inputNorm.data(), h, cfg_.normEps, xn.data() + i * h);
      observe({&b.q.source, &b.k.source, &b.v.source}, xn.data(), n, h);
      if (stop == 0) return;
      attn = attention(b, layer, xn.data(), n);
      observe({&b.o.source}, attn.data(), n, qd);
      if (stop == 1) {
        if (keeps) *keep = {1, std::move(attn), {}};
        return;
      }
    } else if (from.stage == 1) {
      attn = std::move(from.a);
    }
    std::vector<float> o(xs);
    const bool sandwich = !b.preFfnNorm.empty();  // Gemma 2 normalizes sub-layer outputs before the residual add
    if (from.stage <= 1) {
      b.o.forward(attn.data(), n, o.data(), pool_);
      if (sandwich)
        for (std::int64_t i = 0; i < n; ++i) rmsNorm(o.data() + i * h, b.postNorm.data(), h, cfg_.normEps, o.data() + i * h);
      for (std::size_t i = 0; i < xs; ++i) x[i] += o[i];
      const auto& ffnNorm = sandwich ? b.preFfnNorm : b.postNorm;
      for (std::int64_t i = 0; i < n; ++i) rmsNorm(x + i * h, ffnNorm.data(), h, cfg_.normEps, xn.data() + i * h);
    } else {
      std::copy(from.a.begin(), from.a.end(), x);  // the residual after attention
      if (from.stage == 2) xn = std::move(from.b);
    }
    if (b.experts.empty()) {
      std::vector<float> inner;
      if (from.stage == 3) inner = std::move(from.b);
      if (!gatedMlp(b.gate, b.up, b.down, xn.data(), n, o.data(), stop, &inner, from.stage < 2)) {
        if (keeps) *keep = {stop, std::vector<float>(x, x + xs), stop == 2 ? std::move(xn) : std::move(inner)};
        return;
      }
      if (sandwich)
        for (std::int64_t i = 0; i < n; ++i) rmsNorm(o.data() + i * h, b.postFfnNorm.data(), h, cfg_.normEps, o.data() + i * h);
      for (std::size_t i = 0; i < xs; ++i) x[i] += o[i];
    } else {
      moe(b, xn, n, x);
    }
  }

  // The attention sub-layer's output before o ([n][heads x head_dim]) for the normalized input xn of n tokens:
  // q/k/v, q/k norms where the model has them, RoPE, the KV cache, causal (sliding-window where configured)
  // attention over grouped KV heads.
  std::vector<float> attention(const Block& b, std::int64_t layer, const float* xn, std::int64_t n) {
    const std::int64_t hd = cfg_.headDim, nh = cfg_.numHeads, nkv = cfg_.numKvHeads;
    const std::int64_t qd = nh * hd, kvd = nkv * hd;
    std::vector<float> q(static_cast<std::size_t>(n * qd)), k(static_cast<std::size_t>(n * kvd)),
        v(static_cast<std::size_t>(n * kvd));
    const Linear* qkv[] = {&b.q, &b.k, &b.v};
    float* qkvOut[] = {q.data(), k.data(), v.data()};
    forwardShared(qkv, xn, n, qkvOut, pool_);
    // Token i's cache and position: one sequence's tokens at pos_, pos_ + 1, ...; in a batch (forwardBatch),
    // sequence i's own cache at pos_.
    std::vector<std::int64_t> positions(static_cast<std::size_t>(n));
    std::vector<const float*> keys(static_cast<std::size_t>(n)), values(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t p = inBatch_ ? pos_ : pos_ + i;
      float* kc = cache_.keys(layer, inBatch_, i);
      float* vc = cache_.values(layer, inBatch_, i);
      for (std::int64_t hh = 0; hh < nh; ++hh) {
        float* qh = q.data() + i * qd + hh * hd;
        if (cfg_.qkNorm) rmsNorm(qh, b.qNorm.data(), hd, cfg_.normEps, qh);
        rope_.apply(qh, p);
      }
      for (std::int64_t hh = 0; hh < nkv; ++hh) {
        float* kh = k.data() + i * kvd + hh * hd;
        if (cfg_.qkNorm) rmsNorm(kh, b.kNorm.data(), hd, cfg_.normEps, kh);
        rope_.apply(kh, p);
      }
      std::copy_n(k.data() + i * kvd, kvd, kc + p * kvd);
      std::copy_n(v.data() + i * kvd, kvd, vc + p * kvd);
      positions[static_cast<std::size_t>(i)] = p;
      keys[static_cast<std::size_t>(i)] = kc;
      values[static_cast<std::size_t>(i)] = vc;
    }
    std::vector<float> attn(static_cast<std::size_t>(n * qd));
    const AttentionShape shape{nh, nkv, hd, attnScale_, static_cast<float>(cfg_.attnLogitSoftcap), b.window};
    causalAttention(shape, q.data(), n, positions.data(), keys.data(), values.data(), attn.data(), pool_);
    return attn;
  }

  void observe(std::initializer_list<const std::string*> weights, const float* x, std::int64_t n, std::int64_t cols) {
    if (observer_) observer_(std::span(weights.begin(), weights.size()), x, n, cols);
  }

  float activation(float g) const {
    if (!gelu_) return g / (1.0f + vmath::exp1(-g));  // SiLU, as vmath::siluMul
    // gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    return 0.5f * g * (1.0f + std::tanh(0.7978845608028654f * (g + 0.044715f * g * g * g)));
  }

  // g[i] = activation(g[i]) * u[i] for i < count, on the pool's threads in blocks of 16 K values (a prompt's
  // MLP has millions).
  void activate(float* g, const float* u, std::int64_t count) {
    constexpr std::int64_t kBlock = 16384;
    if (count <= kBlock) {  // one token's: not worth waking the pool
      if (!gelu_) vmath::siluMul(g, u, count);
      else
        for (std::int64_t i = 0; i < count; ++i) g[i] = activation(g[i]) * u[i];
      return;
    }
    pool_.parallelFor(static_cast<std::size_t>((count + kBlock - 1) / kBlock), [&](std::size_t b) {
      const std::int64_t i0 = static_cast<std::int64_t>(b) * kBlock, i1 = std::min(count, i0 + kBlock);
      if (!gelu_) {
        vmath::siluMul(g + i0, u + i0, i1 - i0);
        return;
      }
      for (std::int64_t i = i0; i < i1; ++i) g[i] = activation(g[i]) * u[i];
    });
  }

  // down(silu(gate(x)) * up(x)) for n tokens; false when it stopped after observing stage `stop`'s inputs
  // (runBlock), out then unset. inner: the product silu(gate(x)) * up(x) when given (non-empty; xn is not read),
  // and where it is left when the MLP stops at stage 3. observeInput false: xn's observation was made by an earlier
  // pass (BlockProgress at stage 2).
  bool gatedMlp(const Linear& gate, const Linear& up, const Linear& down, const float* xn, std::int64_t n, float* out,
                int stop = -1, std::vector<float>* inner = nullptr, bool observeInput = true) {
    std::vector<float> g;
    if (inner && !inner->empty()) {
      g = std::move(*inner);
    } else {
      g.resize(static_cast<std::size_t>(n * gate.rows));
      std::vector<float> u(g.size());
      if (observeInput) observe({&gate.source, &up.source}, xn, n, gate.cols);
      if (stop == 2) return false;
      const Linear* gateUp[] = {&gate, &up};
      float* gateUpOut[] = {g.data(), u.data()};
      forwardShared(gateUp, xn, n, gateUpOut, pool_);
      activate(g.data(), u.data(), static_cast<std::int64_t>(g.size()));
      observe({&down.source}, g.data(), n, down.cols);
      if (stop == 3) {
        if (inner) *inner = std::move(g);
        return false;
      }
    }
    down.forward(g.data(), n, out, pool_);
    return true;
  }

  // Mixtral: softmax over the router logits, the top-k experts re-weighted to sum to 1.
  void moe(const Block& b, const std::vector<float>& xn, std::int64_t n, float* x) {
    const std::int64_t h = cfg_.hiddenSize, ne = b.router.rows;
    const std::int64_t k = std::max<std::int64_t>(1, std::min(cfg_.expertsPerToken, ne));
    std::vector<float> logits(static_cast<std::size_t>(n * ne)), out(static_cast<std::size_t>(h));
    b.router.forward(xn.data(), n, logits.data(), pool_);
    for (std::int64_t i = 0; i < n; ++i) {
      float* r = logits.data() + i * ne;
      const float mx = *std::max_element(r, r + ne);
      float sum = 0;
      for (std::int64_t e = 0; e < ne; ++e) sum += (r[e] = std::exp(r[e] - mx));
      for (std::int64_t e = 0; e < ne; ++e) r[e] /= sum;
      std::vector<std::int64_t> order(static_cast<std::size_t>(ne));
      for (std::int64_t e = 0; e < ne; ++e) order[e] = e;
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](auto a, auto c) { return r[a] > r[c]; });
      float top = 0;
      for (std::int64_t j = 0; j < k; ++j) top += r[order[j]];
      for (std::int64_t j = 0; j < k; ++j) {
        const Expert& ex = b.experts[static_cast<std::size_t>(order[j])];
        gatedMlp(ex.gate, ex.up, ex.down, xn.data() + i * h, 1, out.data());
        const float w = r[order[j]] / top;
        for (std::int64_t t = 0; t < h; ++t) x[i * h + t] += w * out[t];
      }
    }
  }

  ModelConfig cfg_;
  ThreadPool& pool_;
  bool gemma_ = false, gelu_ = false;
  float attnScale_ = 1.0f;
  Rope rope_;
  std::int64_t ctx_ = 0, pos_ = 0;
  KvCache cache_;
  Linear embed_, lmHead_;
  std::vector<float> finalNorm_;
  std::vector<Block> blocks_;
  bool inBatch_ = false;  // runBlock is serving forwardBatch
  InputObserver observer_;
};

}  // namespace

std::unique_ptr<CausalLM> loadCausalLM(const WeightSource& ws, ThreadPool& pool, const LoadOptions& options) {
  if (familyOf(ws.config().modelType)) return std::make_unique<LlamaFamily>(ws, pool, options);
  fail(Errc::Unsupported, "{}: unsupported architecture {} (supported: {})", ws.label(), ws.config().architecture(),
       supportedFamilies());
}

}  // namespace eq::model
