// safetensors: writer -> reader round trips for every dtype, header layout, all-or-nothing writes, and random
// corruption of valid files (every mutation either parses or gives an eq::Error; never a crash).
#include "common/error.h"
#include "format/archive.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "test_util.h"

#include <random>

using namespace eq;
namespace fs = std::filesystem;

namespace {
std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}
}  // namespace

class TestSafetensors : public QObject {
  Q_OBJECT
  std::unique_ptr<TempDir> tmp_;

 private slots:
  void init() { tmp_ = std::make_unique<TempDir>("eq-test"); }
  void cleanup() { tmp_.reset(); }

  void roundTrip_data() {
    QTest::addColumn<QString>("dtype");
    QTest::addColumn<QList<qint64>>("shape");
    for (const char* d : {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I64", "I32", "I16", "I8", "U8", "BOOL"}) {
      QTest::newRow(qPrintable(QString("%1 matrix").arg(d))) << QString(d) << QList<qint64>{3, 5};
      QTest::newRow(qPrintable(QString("%1 scalar").arg(d))) << QString(d) << QList<qint64>{};
    }
    QTest::newRow("empty tensor") << "BF16" << QList<qint64>{0, 7};
    QTest::newRow("rank 4") << "F16" << QList<qint64>{2, 3, 4, 5};
  }
  void roundTrip() {
    QFETCH(QString, dtype);
    QFETCH(QList<qint64>, shape);
    const DType dt = *parseDType(dtype.toStdString());
    std::vector<TensorSpec> specs{{"first", dt, {shape.begin(), shape.end()}}, {"second.weight", DType::BF16, {4, 3}}};
    const auto a = pattern(specs[0].bytes(), 1), b = pattern(specs[1].bytes(), 2);
    const fs::path path = tmp_->path() / "rt.safetensors";
    {
      SafetensorsWriter w(path, specs, {{"format", "pt"}, {"note", "round trip"}});
      w.append(a);
      w.append(b);
      w.finish();
    }
    const auto f = SafetensorsFile::open(path);
    QCOMPARE(f.tensors().size(), std::size_t(2));
    QCOMPARE(f.metadata().at("format"), std::string("pt"));
    QCOMPARE(f.metadata().at("note"), std::string("round trip"));
    QCOMPARE(f.header().dataOffset() % 8, std::uint64_t(0));
    const TensorInfo* t = f.find("first");
    QVERIFY(t);
    QCOMPARE(t->dtype, dt);
    QCOMPARE(t->shape, specs[0].shape);
    QVERIFY(std::equal(a.begin(), a.end(), f.data(*t).begin(), f.data(*t).end()));
    const TensorInfo* u = f.find("second.weight");
    QVERIFY(u && std::equal(b.begin(), b.end(), f.data(*u).begin(), f.data(*u).end()));
    QCOMPARE(u->numel, std::uint64_t(12));
    QVERIFY(f.find("third") == nullptr);
  }

  void emptyHeaderIsAValidFile() {
    const fs::path path = tmp_->path() / "empty.safetensors";
    eqtest::writeFile(path, std::string("\x02\0\0\0\0\0\0\0{}", 10));
    QCOMPARE(SafetensorsFile::open(path).tensors().size(), std::size_t(0));
  }

  void unfinishedWriteLeavesNothing() {
    const fs::path path = tmp_->path() / "partial.safetensors";
    {
      SafetensorsWriter w(path, {{"a", DType::F32, {4}}, {"b", DType::F32, {4}}});
      w.append(pattern(16, 3));
    }  // destroyed before finish(): as after an error or a cancel
    QVERIFY(!fs::exists(path));
    QVERIFY(fs::is_empty(tmp_->path()));
  }

  void writerRejectsWrongSizes() {
    const fs::path path = tmp_->path() / "bad.safetensors";
    SafetensorsWriter w(path, {{"a", DType::F32, {4}}});
    EQ_EXPECT_ERROR(w.append(pattern(15, 4)), Errc::InvalidArgument,
                    path.string() + ": tensor \"a\" expects 16 bytes, got 15");
    EQ_EXPECT_ERROR(w.finish(), Errc::InvalidArgument, path.string() + ": 0 of 1 tensors written");
  }

  void missingFileNamesThePath() {
    const fs::path path = tmp_->path() / "nope.safetensors";
    EQ_EXPECT_ERROR(SafetensorsFile::open(path), Errc::NotFound, path.string() + ": No such file or directory");
  }

  // Flip, truncate and overwrite bytes of a valid file: parsing must succeed or throw eq::Error, nothing else.
  void randomCorruptionNeverCrashes() {
    std::vector<TensorSpec> specs{{"model.layers.0.mlp.up_proj.weight", DType::BF16, {8, 4}},
                                  {"model.norm.weight", DType::F32, {4}}};
    const fs::path path = tmp_->path() / "base.safetensors";
    {
      SafetensorsWriter w(path, specs, {{"format", "pt"}});
      w.append(pattern(64, 5));
      w.append(pattern(16, 6));
      w.finish();
    }
    const std::string base = eqtest::readText(path);
    std::mt19937 rng(42);
    int ok = 0, errors = 0;
    for (int i = 0; i < 3000; ++i) {
      std::string m = base;
      switch (i % 3) {
        case 0: m[rng() % m.size()] ^= static_cast<char>(1 + rng() % 255); break;
        case 1: m.resize(rng() % m.size()); break;
        default: for (int k = 0; k < 4; ++k) m[rng() % std::min<std::size_t>(m.size(), 120)] = "{}[]\":,0123456789-e"[rng() % 19];
      }
      try {
        const auto h = parseSafetensors(std::as_bytes(std::span(m)), "mutant");
        for (const auto& t : h.tensors) QVERIFY(h.dataOffset() + t.end <= m.size());
        ++ok;
      } catch (const Error& e) {
        QVERIFY(std::string(e.what()).rfind("mutant: ", 0) == 0);
        ++errors;
      }
    }
    QVERIFY(errors > 1000);
    QVERIFY(ok > 0);
  }
};

QTEST_MAIN(TestSafetensors)
#include "test_safetensors.moc"
