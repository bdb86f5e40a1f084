// plot_quality: renders the quality study's rate-distortion charts (docs/QUALITY.md) offscreen with the project's
// own plotting code (ui/plots). Reads the CSV written by bench/quality/run_quality.py and writes, per model, a PNG
// of perplexity against effective bits per weight, one curve per variant.
//
//   QT_QPA_PLATFORM=offscreen ./build/bench/plot_quality results.csv OUT_PREFIX [--metric ppl|mean_kl|top1]
#include "plots/rate_distortion_chart.h"

#include <QApplication>
#include <QFile>
#include <QMap>
#include <QTextStream>

#include <cstdio>

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  const QStringList args = app.arguments();
  if (args.size() < 3) {
    std::fprintf(stderr, "usage: plot_quality RESULTS.csv OUT_PREFIX [--metric ppl|mean_kl|top1]\n");
    return 2;
  }
  QString metric = "ppl";
  if (const auto i = args.indexOf("--metric"); i > 0 && i + 1 < args.size()) metric = args[i + 1];
  QFile f(args[1]);
  if (!f.open(QIODevice::ReadOnly | QIODevice::Text)) {
    std::fprintf(stderr, "%s: cannot be read\n", qPrintable(args[1]));
    return 1;
  }
  QTextStream in(&f);
  const QStringList header = in.readLine().split(',');
  const int cModel = header.indexOf("model"), cVariant = header.indexOf("variant"),
            cBits = header.indexOf("effective_bpw"), cValue = header.indexOf(metric),
            cOrig = header.indexOf("ppl_original");
  if (cModel < 0 || cVariant < 0 || cBits < 0 || cValue < 0) {
    std::fprintf(stderr, "%s: needs the columns model, variant, effective_bpw and %s\n", qPrintable(args[1]),
                 qPrintable(metric));
    return 1;
  }
  QMap<QString, QMap<QString, eq::ui::ChartSeries>> byModel;
  QMap<QString, double> original;
  while (!in.atEnd()) {
    const QStringList row = in.readLine().split(',');
    if (row.size() < header.size()) continue;
    auto& s = byModel[row[cModel]][row[cVariant]];
    s.name = row[cVariant];
    s.dashed = s.name.startsWith("reference") || s.name.startsWith("rtn") || s.name.startsWith("nf4");
    s.bits << row[cBits].toDouble();
    s.value << row[cValue].toDouble();
    if (cOrig >= 0) original[row[cModel]] = row[cOrig].toDouble();
  }
  const QString label = metric == "ppl" ? "perplexity (held-out KJV books)"
                        : metric == "mean_kl" ? "mean KL(original || compressed), nats"
                                              : "top-1 agreement with the original";
  for (auto it = byModel.begin(); it != byModel.end(); ++it) {
    eq::ui::ChartOptions o;
    o.title = QString("%1: %2 against effective bits").arg(it.key(), metric);
    o.yLabel = label;
    o.logY = metric != "top1";
    if (metric == "ppl") o.referenceValue = original.value(it.key());
    const QString path = QString("%1-%2-%3.png").arg(args[2], it.key(), metric);
    QString error;
    if (!eq::ui::saveRateDistortionPng(it.value().values().toVector(), o, path, 900, 560, &error)) {
      std::fprintf(stderr, "%s\n", qPrintable(error));
      return 1;
    }
    std::printf("%s\n", qPrintable(path));
  }
  return 0;
}
