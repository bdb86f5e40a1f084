// Reproducible output and a stable format. The same model and options give the same .eqz file, byte for byte but
// for its timings, with 1, 2 or 16 threads (work is split by index and every reduction runs in a fixed order:
// docs/ARCHITECTURE.md, "Determinism"). And every build must read the committed golden .eqz files of format 1.0
// (tests/data/golden/eqz-1.0, made by tools/fixtures/make_golden_eqz.py) to the same weights, as zstd keeps its
// golden frames: a change of the decoder that would change what old files mean fails here.
#include "common/thread_pool.h"
#include "format/eqz.h"
#include "format/safetensors.h"
#include "model/model_source.h"
#include "pipeline/compress.h"
#include "pipeline/demo_model.h"
#include "pipeline/eqz_tools.h"
#include "quant/eqz_decode.h"
#include "test_util.h"

#include <QCryptographicHash>
#include <QTemporaryDir>

using namespace eq;
namespace fs = std::filesystem;

namespace {

// A file without what may differ between runs: the index's creation time and its timings (the summary's seconds).
// What is left is the file's data area, byte for byte, and its index as canonical JSON.
std::string withoutTimings(const fs::path& path) {
  const EqzFile f = EqzFile::open(path);
  nlohmann::json index = f.index();
  index.erase("created");
  if (index.contains("summary")) index["summary"].erase("seconds");
  const std::string bytes = eqtest::readText(path);
  std::uint64_t indexOffset = 0;
  std::memcpy(&indexOffset, bytes.data() + 16, 8);
  return bytes.substr(0, 16) + bytes.substr(64, indexOffset - 64) + index.dump();
}

QByteArray sha256(std::span<const std::byte> b) {
  return QCryptographicHash::hash(QByteArrayView(reinterpret_cast<const char*>(b.data()), qsizetype(b.size())),
                                  QCryptographicHash::Sha256)
      .toHex();
}

}  // namespace

class TestDeterminism : public QObject {
  Q_OBJECT
  std::unique_ptr<QTemporaryDir> tmp_;

 private slots:
  void init() { tmp_ = std::make_unique<QTemporaryDir>(); }

  void sameFileForAnyThreadCount_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("setting");
    QTest::newRow("demo model, default") << QString::fromStdString(demoModelPath().string()) << "default";
    QTest::newRow("demo model, 2.1 bits paper-local int8") << QString::fromStdString(demoModelPath().string())
                                                          << "int8";
    QTest::newRow("tiny-qwen2, calibration self")
        << QString::fromStdString((eqtest::dataDir() / "models/tiny-qwen2").string()) << "calibration";
  }
  void sameFileForAnyThreadCount() {
    QFETCH(QString, model);
    QFETCH(QString, setting);
    const auto src = ModelSource::open(model.toStdString());
    std::string first;
    for (const unsigned threads : {1u, 2u, 16u}) {
      CompressOptions o;
      o.threads = threads;
      if (setting == "int8") {
        o.format = quant::CodeFormat::Int8;
        o.objective = quant::Objective::PaperLocal;
        o.target.value = 2.1;
      } else if (setting == "calibration") {
        o.calibration = CompressOptions::Calibration::Self;
        o.calibrationOptions.sequences = 4;
        o.calibrationOptions.length = 32;
      }
      const fs::path out = fs::path(tmp_->path().toStdString()) / fmt::format("t{}.eqz", threads);
      compressModel(*src, out, o);
      const std::string file = withoutTimings(out);
      if (first.empty()) first = file;
      else QVERIFY2(file == first, qPrintable(QString("%1 threads wrote another file than 1 thread").arg(threads)));
    }
  }

  // Every tensor of the golden files decodes to the bytes whose SHA-256 the fixture script recorded from the
  // decompressed safetensors (an independent reader: Python's json + hashlib), and every embedded file is intact.
  void goldenFilesReadTheSame_data() {
    QTest::addColumn<QString>("name");
    const auto expected = eqtest::readJson(eqtest::dataDir() / "golden/eqz-1.0/expected.json");
    for (const auto& [name, e] : expected.items()) QTest::newRow(name.c_str()) << QString::fromStdString(name);
  }
  void goldenFilesReadTheSame() {
    QFETCH(QString, name);
    const fs::path dir = eqtest::dataDir() / "golden/eqz-1.0";
    const auto expected = eqtest::readJson(dir / "expected.json")[name.toStdString()];
    const EqzFile f = EqzFile::open(dir / name.toStdString());
    ThreadPool pool(2);
    verifyEqz(f, pool);
    QCOMPARE(f.tensors().size(), expected["tensors"].size());
    for (const EqzTensor& t : f.tensors()) {
      const auto& e = expected["tensors"][t.name];
      QVERIFY2(!e.is_null(), t.name.c_str());
      QCOMPARE(eqtest::q(std::string(encodingName(t.encoding))), eqtest::q(e["encoding"].get<std::string>()));
      DType dtype;
      const auto bytes = decodeTensor(f, t, &pool, dtype);
      QCOMPARE(eqtest::q(std::string(dtypeName(dtype))), eqtest::q(e["dtype"].get<std::string>()));
      QCOMPARE(sha256(bytes), QByteArray::fromStdString(e["sha256"].get<std::string>()));
    }
    QCOMPARE(f.files().size(), expected["files"].size());
    for (const auto& [file, section] : f.files())
      QCOMPARE(sha256(f.bytes(section)), QByteArray::fromStdString(expected["files"][file].get<std::string>()));
  }
};

QTEST_MAIN(TestDeterminism)
#include "test_determinism.moc"
