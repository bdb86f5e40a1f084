// Llama 2/3/3.1/3.2, Mistral, Qwen2/2.5 (q/k/v bias), Qwen3 (per-head q/k RMSNorm): pre-norm decoder blocks with
// RMSNorm, rotary attention with grouped KV heads, and a SiLU-gated MLP. Matches HF transformers in float32.
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/causal_lm.h"
#include "model/rope.h"

#include <fmt/format.h>

#include <cmath>
#include <optional>

namespace eq::model {
namespace {

struct Block {
  std::vector<float> inputNorm, postNorm, qNorm, kNorm;
  Linear q, k, v, o, gate, up, down;
};

void rmsNorm(const float* x, const float* w, std::int64_t n, double eps, float* out) {
  double ss = 0;
  for (std::int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + static_cast<float>(eps));
  for (std::int64_t i = 0; i < n; ++i) out[i] = w[i] * (x[i] * inv);
}

class LlamaFamily final : public CausalLM {
 public:
  LlamaFamily(const WeightSource& ws, ThreadPool& pool, const LoadOptions& o)
      : cfg_(ws.config()), pool_(pool), rope_(cfg_.rope, cfg_.headDim, cfg_.maxPositions, ws.label()) {
    ctx_ = cfg_.maxPositions > 0 ? std::min(o.contextLength, cfg_.maxPositions) : o.contextLength;
    embed_ = ws.linear("model.embed_tokens.weight");
    if (embed_.rows != cfg_.vocabSize || embed_.cols != cfg_.hiddenSize)
      fail(Errc::ShapeMismatch, "{}: model.embed_tokens.weight is [{}, {}], config says [{}, {}]", ws.label(),
           embed_.rows, embed_.cols, cfg_.vocabSize, cfg_.hiddenSize);
    finalNorm_ = ws.floats("model.norm.weight");
    if (ws.has("lm_head.weight")) lmHead_ = ws.linear("lm_head.weight");
    else if (!cfg_.tieWordEmbeddings)
      fail(Errc::MissingTensor, "{}: no lm_head.weight and the embeddings are not tied", ws.label());
    for (std::int64_t l = 0; l < cfg_.numLayers; ++l) blocks_.push_back(loadBlock(ws, l));
    const std::int64_t kv = cfg_.numKvHeads * cfg_.headDim;
    kCache_.assign(static_cast<std::size_t>(cfg_.numLayers * ctx_ * kv), 0.0f);
    vCache_.assign(kCache_.size(), 0.0f);
  }

  std::vector<float> forward(std::span<const std::int32_t> ids, const std::function<bool()>& keepGoing) override {
    const std::int64_t n = static_cast<std::int64_t>(ids.size()), h = cfg_.hiddenSize;
    if (pos_ + n > ctx_)
      fail(Errc::InvalidArgument, "context full: {} tokens in the cache + {} new exceed the context length {}", pos_, n, ctx_);
    std::vector<float> x(static_cast<std::size_t>(n * h));
    for (std::int64_t i = 0; i < n; ++i) {
      if (ids[i] < 0 || ids[i] >= cfg_.vocabSize)
        fail(Errc::InvalidArgument, "token id {} is outside the vocabulary (0..{})", ids[i], cfg_.vocabSize - 1);
      embed_.row(ids[i], x.data() + i * h);
    }
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
      if (keepGoing && !keepGoing()) fail(Errc::Cancelled, "generation cancelled");
      runBlock(blocks_[l], static_cast<std::int64_t>(l), x, n);
    }
    std::vector<float> normed(x.size());
    for (std::int64_t i = 0; i < n; ++i) rmsNorm(x.data() + i * h, finalNorm_.data(), h, cfg_.normEps, normed.data() + i * h);
    std::vector<float> logits(static_cast<std::size_t>(n * cfg_.vocabSize));
    (lmHead_.empty() ? embed_ : lmHead_).forward(normed.data(), n, logits.data(), pool_);
    pos_ += n;
    return logits;
  }

  void reset() override { pos_ = 0; }
  std::int64_t position() const override { return pos_; }
  std::int64_t vocabSize() const override { return cfg_.vocabSize; }
  std::int64_t contextLength() const override { return ctx_; }
  std::uint64_t weightBytes() const override {
    std::uint64_t b = embed_.bytes() + lmHead_.bytes();
    for (const auto& k : blocks_)
      b += k.q.bytes() + k.k.bytes() + k.v.bytes() + k.o.bytes() + k.gate.bytes() + k.up.bytes() + k.down.bytes();
    return b;
  }

 private:
  Block loadBlock(const WeightSource& ws, std::int64_t l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    Block b;
    b.inputNorm = ws.floats(p + "input_layernorm.weight");
    b.postNorm = ws.floats(p + "post_attention_layernorm.weight");
    auto lin = [&](const std::string& name) {
      Linear w = ws.linear(p + name + ".weight");
      if (ws.has(p + name + ".bias")) w.bias = ws.floats(p + name + ".bias");
      return w;
    };
    b.q = lin("self_attn.q_proj");
    b.k = lin("self_attn.k_proj");
    b.v = lin("self_attn.v_proj");
    b.o = lin("self_attn.o_proj");
    b.gate = lin("mlp.gate_proj");
    b.up = lin("mlp.up_proj");
    b.down = lin("mlp.down_proj");
    if (cfg_.qkNorm) {
      b.qNorm = ws.floats(p + "self_attn.q_norm.weight");
      b.kNorm = ws.floats(p + "self_attn.k_norm.weight");
    }
    const std::int64_t qd = cfg_.numHeads * cfg_.headDim, kvd = cfg_.numKvHeads * cfg_.headDim;
    if (b.q.rows != qd || b.k.rows != kvd || b.v.rows != kvd || b.o.cols != qd || b.q.cols != cfg_.hiddenSize)
      fail(Errc::ShapeMismatch, "{}: layer {} attention shapes do not match config.json", ws.label(), l);
    return b;
  }

  void runBlock(const Block& b, std::int64_t layer, std::vector<float>& x, std::int64_t n) {
    const std::int64_t h = cfg_.hiddenSize, hd = cfg_.headDim, nh = cfg_.numHeads, nkv = cfg_.numKvHeads;
    const std::int64_t qd = nh * hd, kvd = nkv * hd;
    std::vector<float> xn(x.size()), q(static_cast<std::size_t>(n * qd)), k(static_cast<std::size_t>(n * kvd)),
        v(static_cast<std::size_t>(n * kvd));
    for (std::int64_t i = 0; i < n; ++i) rmsNorm(x.data() + i * h, b.inputNorm.data(), h, cfg_.normEps, xn.data() + i * h);
    b.q.forward(xn.data(), n, q.data(), pool_);
    b.k.forward(xn.data(), n, k.data(), pool_);
    b.v.forward(xn.data(), n, v.data(), pool_);
    float* kc = kCache_.data() + layer * ctx_ * kvd;
    float* vc = vCache_.data() + layer * ctx_ * kvd;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t p = pos_ + i;
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
    }
    // Causal attention (sliding window when configured), grouped KV heads; heads x positions in parallel.
    std::vector<float> attn(static_cast<std::size_t>(n * qd));
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const std::int64_t group = nh / nkv;
    pool_.parallelFor(static_cast<std::size_t>(n * nh), [&](std::size_t task) {
      const std::int64_t i = static_cast<std::int64_t>(task) / nh, hh = static_cast<std::int64_t>(task) % nh;
      const std::int64_t p = pos_ + i, kvh = hh / group;
      const std::int64_t first = cfg_.slidingWindow ? std::max<std::int64_t>(0, p - *cfg_.slidingWindow + 1) : 0;
      const float* qh = q.data() + i * qd + hh * hd;
      std::vector<float> s(static_cast<std::size_t>(p - first + 1));
      float mx = -INFINITY;
      for (std::int64_t j = first; j <= p; ++j) {
        const float* kh = kc + j * kvd + kvh * hd;
        float d = 0;
        for (std::int64_t t = 0; t < hd; ++t) d += qh[t] * kh[t];
        s[j - first] = d * scale;
        mx = std::max(mx, s[j - first]);
      }
      float sum = 0;
      for (auto& e : s) sum += (e = std::exp(e - mx));
      float* out = attn.data() + i * qd + hh * hd;
      std::fill(out, out + hd, 0.0f);
      for (std::int64_t j = first; j <= p; ++j) {
        const float w = s[j - first] / sum;
        const float* vh = vc + j * kvd + kvh * hd;
        for (std::int64_t t = 0; t < hd; ++t) out[t] += w * vh[t];
      }
    });
    std::vector<float> o(x.size());
    b.o.forward(attn.data(), n, o.data(), pool_);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    // MLP: down(silu(gate(x)) * up(x))
    for (std::int64_t i = 0; i < n; ++i) rmsNorm(x.data() + i * h, b.postNorm.data(), h, cfg_.normEps, xn.data() + i * h);
    const std::int64_t inter = b.gate.rows;
    std::vector<float> g(static_cast<std::size_t>(n * inter)), u(g.size());
    b.gate.forward(xn.data(), n, g.data(), pool_);
    b.up.forward(xn.data(), n, u.data(), pool_);
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    b.down.forward(g.data(), n, o.data(), pool_);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += o[i];
  }

  ModelConfig cfg_;
  ThreadPool& pool_;
  Rope rope_;
  std::int64_t ctx_ = 0, pos_ = 0;
  Linear embed_, lmHead_;
  std::vector<float> finalNorm_;
  std::vector<Block> blocks_;
  std::vector<float> kCache_, vCache_;
};

}  // namespace

std::unique_ptr<CausalLM> loadCausalLM(const WeightSource& ws, ThreadPool& pool, const LoadOptions& options) {
  const std::string& type = ws.config().modelType;
  if (type == "llama" || type == "mistral" || type == "qwen2" || type == "qwen3")
    return std::make_unique<LlamaFamily>(ws, pool, options);
  fail(Errc::Unsupported, "{}: unsupported architecture {} (supported so far: Llama, Mistral, Qwen2, Qwen3)",
       ws.label(), ws.config().architecture());
}

}  // namespace eq::model
