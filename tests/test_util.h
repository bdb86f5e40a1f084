// Helpers shared by the test executables.
#pragma once

#include "common/error.h"

#include <nlohmann/json.hpp>
#include <QProcess>
#include <QString>
#include <QStringList>
#include <QTest>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace eqtest {

inline std::filesystem::path dataDir() { return EQ_TEST_DATA; }

// A committed golden, or the larger file the environment variable `env` names (the differential fuzz tests).
inline std::filesystem::path goldenOr(const char* env, const std::filesystem::path& committed) {
  const char* other = std::getenv(env);
  return other && *other ? std::filesystem::path(other) : committed;
}

inline std::string readText(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline nlohmann::json readJson(const std::filesystem::path& p) { return nlohmann::json::parse(readText(p)); }

inline void writeFile(const std::filesystem::path& p, const std::string& content) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

inline QString q(const std::string& s) { return QString::fromStdString(s); }

// One run of the entquant CLI (EQ_CLI): exit code (-1 when it crashed or timed out), stdout and stderr.
struct CliRun {
  int code = -1;
  QByteArray out, err;
};

inline CliRun runCli(const QStringList& args, int timeoutMs = 280000) {
  QProcess p;
  p.start(EQ_CLI, args);
  p.waitForFinished(timeoutMs);
  return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
          p.readAllStandardError()};
}

}  // namespace eqtest

// Runs `expr`, which must throw eq::Error with exactly `code` and `message`.
#define EQ_EXPECT_ERROR(expr, expectedCode, expectedMessage)                                                    \
  do {                                                                                          \
    bool threw_ = false;                                                                        \
    try {                                                                                       \
      expr;                                                                                     \
    } catch (const eq::Error& e_) {                                                             \
      threw_ = true;                                                                            \
      QCOMPARE(QString::fromStdString(e_.what()), QString::fromStdString(std::string(expectedMessage))); \
      QCOMPARE(int(e_.code()), int(expectedCode));                                                      \
    }                                                                                           \
    QVERIFY2(threw_, "expected an eq::Error");                                                  \
  } while (0)

// The same, and the error must concern `expectedSetting` (eq::Setting: the CLI puts its flag in front).
#define EQ_EXPECT_SETTING_ERROR(expr, expectedCode, expectedSetting, expectedMessage)                          \
  do {                                                                                                        \
    bool threw_ = false;                                                                                      \
    try {                                                                                                     \
      expr;                                                                                                   \
    } catch (const eq::Error& e_) {                                                                           \
      threw_ = true;                                                                                          \
      QCOMPARE(QString::fromStdString(e_.what()), QString::fromStdString(std::string(expectedMessage)));      \
      QCOMPARE(int(e_.code()), int(expectedCode));                                                            \
      QCOMPARE(QString(eq::settingName(e_.setting())), QString(eq::settingName(expectedSetting)));           \
    }                                                                                                         \
    QVERIFY2(threw_, "expected an eq::Error");                                                                \
  } while (0)
