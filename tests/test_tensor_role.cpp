// Tensor roles and compressibility (ENTQUANT.md section 5) across the naming schemes of Llama, Mistral, Qwen2/3,
// Phi-3, Gemma, MoE models (Mixtral, Qwen-MoE, transformers-5 stacked experts), GPT-2/Falcon, and the generic rule;
// the architecture table's block weights, calibration stages, depth rule and families (model/arch.h).
#include "model/arch.h"
#include "model/tensor_role.h"
#include "test_util.h"

using namespace eq;

class TestTensorRole : public QObject {
  Q_OBJECT

 private slots:
  void classify_data() {
    QTest::addColumn<QString>("name");
    QTest::addColumn<QList<qint64>>("shape");
    QTest::addColumn<QString>("dtype");
    QTest::addColumn<QString>("role");
    QTest::addColumn<int>("layer");
    QTest::addColumn<bool>("compressible");
    using L = QList<qint64>;
    auto row = [](const char* n, L s, const char* d, const char* r, int layer, bool c) {
      QTest::newRow(n) << QString(n) << s << QString(d) << QString(r) << layer << c;
    };
    row("model.embed_tokens.weight", {128256, 4096}, "BF16", "embedding", -1, false);
    row("lm_head.weight", {128256, 4096}, "BF16", "lm_head", -1, false);
    row("model.norm.weight", {4096}, "BF16", "norm", -1, false);
    row("model.layers.0.self_attn.q_proj.weight", {4096, 4096}, "BF16", "attention", 0, true);
    row("model.layers.31.self_attn.k_proj.weight", {1024, 4096}, "BF16", "attention", 31, true);
    row("model.layers.7.self_attn.o_proj.weight", {4096, 4096}, "F16", "attention", 7, true);
    row("model.layers.2.mlp.down_proj.weight", {4096, 14336}, "F32", "mlp", 2, true);
    row("model.layers.2.mlp.gate_proj.weight", {14336, 4096}, "BF16", "mlp", 2, true);
    row("model.layers.2.input_layernorm.weight", {4096}, "BF16", "norm", 2, false);
    row("model.layers.3.self_attn.q_proj.bias", {4096}, "BF16", "bias", 3, false);             // Qwen2
    row("model.layers.3.self_attn.q_norm.weight", {128}, "BF16", "norm", 3, false);            // Qwen3
    row("model.layers.4.self_attn.qkv_proj.weight", {9216, 3072}, "BF16", "attention_qkv", 4, true);  // Phi-3
    row("model.layers.4.mlp.gate_up_proj.weight", {16384, 3072}, "BF16", "mlp_gate_up", 4, true);
    row("model.layers.5.pre_feedforward_layernorm.weight", {2304}, "BF16", "norm", 5, false);  // Gemma 2
    row("model.layers.1.block_sparse_moe.experts.7.w2.weight", {4096, 14336}, "BF16", "moe_expert", 1, true);
    row("model.layers.1.block_sparse_moe.gate.weight", {8, 4096}, "BF16", "moe_router", 1, false);
    row("model.layers.1.mlp.gate.weight", {60, 2048}, "BF16", "moe_router", 1, false);         // Qwen-MoE router
    row("model.layers.1.mlp.experts.12.up_proj.weight", {1408, 2048}, "BF16", "moe_expert", 1, true);
    row("model.layers.1.mlp.shared_expert.down_proj.weight", {2048, 5632}, "BF16", "mlp", 1, true);
    row("model.layers.1.mlp.shared_expert_gate.weight", {1, 2048}, "BF16", "moe_router", 1, false);
    row("model.layers.9.mlp.experts.gate_up_proj", {8, 2816, 2048}, "BF16", "moe_expert", 9, true);  // stacked
    row("transformer.h.0.attn.c_attn.weight", {768, 2304}, "F32", "attention_qkv", 0, true);   // GPT-2
    row("transformer.h.0.attn.c_proj.weight", {768, 768}, "F32", "attention", 0, true);
    row("transformer.h.0.mlp.c_fc.weight", {768, 3072}, "F32", "mlp", 0, true);
    row("transformer.h.0.ln_1.weight", {768}, "F32", "norm", 0, false);
    row("transformer.wte.weight", {50257, 768}, "F32", "embedding", -1, false);
    row("transformer.wpe.weight", {1024, 768}, "F32", "embedding", -1, false);
    row("transformer.h.3.self_attention.query_key_value.weight", {4672, 4544}, "BF16", "attention_qkv", 3, true);
    row("model.blocks.3.mixer.in_proj.weight", {512, 256}, "BF16", "linear", 3, true);         // generic rule
    row("model.layers.0.self_attn.q_proj.weight_scale", {4096, 1}, "F32", "other", 0, false);  // FP8 checkpoint
    row("model.layers.0.mlp.up_proj.weight int8", {64, 64}, "I8", "mlp", 0, false);
    row("model.layers.0.mlp.up_proj.weight fp8", {64, 64}, "F8_E4M3", "mlp", 0, false);
    row("model.layers.0.mlp.up_proj.weight empty", {0, 64}, "BF16", "mlp", 0, false);
    row("vision_tower.blocks.0.conv.weight", {64, 3, 14, 14}, "BF16", "linear", 0, false);
    row("rotary_emb.inv_freq", {64}, "F32", "other", -1, false);
    row("output.weight", {32000, 4096}, "BF16", "lm_head", -1, false);
  }
  void classify() {
    QFETCH(QString, name);
    QFETCH(QList<qint64>, shape);
    QFETCH(QString, dtype);
    QFETCH(QString, role);
    QFETCH(int, layer);
    QFETCH(bool, compressible);
    // Row names may carry a note after a space; the tensor name is the first word.
    const std::string tensorName = name.section(' ', 0, 0).toStdString();
    const auto c = classifyTensor(tensorName, {shape.begin(), shape.end()}, *parseDType(dtype.toStdString()));
    QCOMPARE(QString::fromUtf8(roleName(c.role).data(), int(roleName(c.role).size())), role);
    QCOMPARE(c.layer, layer);
    QCOMPARE(c.compressible, compressible);
  }

  void naturalOrder_data() {
    QTest::addColumn<QString>("a");
    QTest::addColumn<QString>("b");
    QTest::newRow("2 < 10") << "model.layers.2.mlp" << "model.layers.10.mlp";
    QTest::newRow("prefix") << "layers.1" << "layers.1.x";
    QTest::newRow("letters") << "a.weight" << "b.weight";
    QTest::newRow("leading zeros") << "model-00002" << "model-00010";
  }
  void naturalOrder() {
    QFETCH(QString, a);
    QFETCH(QString, b);
    QVERIFY(naturalLess(a.toStdString(), b.toStdString()));
    QVERIFY(!naturalLess(b.toStdString(), a.toStdString()));
    QVERIFY(!naturalLess(a.toStdString(), a.toStdString()));
  }

  // What a block's weight computes, the stage error feedback sees it at, and whether the depth rule doubles it.
  void blockWeights_data() {
    QTest::addColumn<QString>("name");
    QTest::addColumn<QString>("weight");
    QTest::addColumn<int>("stage");
    QTest::addColumn<bool>("doubled");
    auto row = [](const char* n, const char* w, int stage, bool doubled) {
      QTest::newRow(n) << QString(n) << QString(w) << stage << doubled;
    };
    row("model.layers.0.self_attn.q_proj.weight", "q", 0, false);
    row("model.layers.0.self_attn.k_proj.weight", "k", 0, false);
    row("model.layers.0.self_attn.v_proj.weight", "v", 0, true);
    row("model.layers.0.self_attn.o_proj.weight", "o", 1, false);
    row("model.layers.0.self_attn.qkv_proj.weight", "qkv", 0, true);  // Phi-3: counted as v (arch.h)
    row("model.layers.0.mlp.gate_proj.weight", "gate", 2, false);
    row("model.layers.0.mlp.up_proj.weight", "up", 2, false);
    row("model.layers.0.mlp.down_proj.weight", "down", 3, true);
    row("model.layers.0.mlp.gate_up_proj.weight", "gate_up", 2, false);
    row("model.layers.0.block_sparse_moe.gate.weight", "router", 2, false);
    row("model.layers.0.block_sparse_moe.experts.3.w1.weight", "gate", 2, false);
    row("model.layers.0.block_sparse_moe.experts.3.w3.weight", "up", 2, false);
    row("model.layers.0.block_sparse_moe.experts.3.w2.weight", "down", 3, true);
    row("transformer.h.0.attn.c_proj.weight", "o", 1, false);  // GPT-2: c_proj is o in the attention...
    row("transformer.h.0.mlp.c_proj.weight", "down", 3, false);  // ...and down in the MLP (not doubled: unstudied)
    row("layers.0.attention.wv.weight", "v", 0, false);  // Meta's spelling
    row("model.blocks.3.mixer.in_proj.weight", "other", 0, false);
    row("model.embed_tokens.weight", "other", 0, false);
  }
  void blockWeights() {
    QFETCH(QString, name);
    QFETCH(QString, weight);
    QFETCH(int, stage);
    QFETCH(bool, doubled);
    const std::string n = name.toStdString();
    QCOMPARE(QString::fromStdString(std::string(blockWeightName(blockWeightOf(n)))), weight);
    QCOMPARE(calibrationStage(n), stage);
    QCOMPARE(depthSensitivity(n, -1, 0), doubled ? 2.0 : 1.0);
  }

  void families() {
    QCOMPARE(QString::fromStdString(supportedFamilies()),
             QString("Llama, Mistral, Qwen2, Qwen3, Phi-3, Mixtral, Gemma, Gemma 2"));
    QVERIFY(familyOf("gemma2") && familyOf("gemma2")->gemmaNorms);
    QVERIFY(familyOf("llama") && !familyOf("llama")->gemmaNorms);
    QVERIFY(!familyOf("gpt2"));
    QCOMPARE(QString::fromStdString(blockTensorName(12, names::kDown)), QString("model.layers.12.mlp.down_proj"));
    QCOMPARE(blockOfWeight("model.layers.12.mlp.up_proj.weight"), std::int64_t{12});
    QCOMPARE(blockOfWeight("model.layers.x.mlp.up_proj.weight"), std::int64_t{-1});
    QCOMPARE(blockOfWeight("model.norm.weight"), std::int64_t{-1});
  }
};

QTEST_MAIN(TestTensorRole)
#include "test_tensor_role.moc"
