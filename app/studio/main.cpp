// entquant-studio: the desktop app. Argument parsing and wiring only; the window is ui/main_window.
//
//   entquant-studio [MODEL]
//   entquant-studio --screenshot FILE.png [MODEL] [--select TENSOR] [--bits B] [--tab layer|depth] [--size WxH]
//                   [--chat PROMPT | --ab PROMPT --original PATH | --quality --original PATH [--windows N]]
//
// --screenshot renders the window offscreen once the model is open and analyzed (and the selected layer's plots
// are drawn), saves a PNG and exits: for the README and for looking at the layout without a display.
#include "common/allocator.h"
#include "chat/ab_pane.h"
#include "chat/chat_pane.h"
#include "main_window.h"
#include "widgets/quality_card.h"
#include "plots/depth_chart.h"
#include "widgets/controls_panel.h"
#include "widgets/layer_plots.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QTabWidget>
#include <QTimer>

#include <cstdio>

namespace {
QtMessageHandler previousHandler = nullptr;

// The offscreen platform's notes that do not concern the user (it has no window manager, no runtime folder).
void quietOffscreen(QtMsgType type, const QMessageLogContext& context, const QString& message) {
  if (message.contains("propagateSizeHints") || message.startsWith("QStandardPaths: XDG_RUNTIME_DIR")) return;
  if (previousHandler) previousHandler(type, context, message);
  else std::fprintf(stderr, "%s\n", qPrintable(qFormatLogMessage(type, context, message)));
}
}  // namespace

int main(int argc, char** argv) {
  eq::keepFreedBuffers();
  bool screenshot = false;
  for (int i = 1; i < argc; ++i) screenshot |= QByteArray(argv[i]) == "--screenshot";
  if (screenshot && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  if (screenshot) previousHandler = qInstallMessageHandler(quietOffscreen);
  QApplication app(argc, argv);
  QApplication::setOrganizationName("EntQuant");
  QApplication::setApplicationName("EntQuant Studio");
  QApplication::setApplicationVersion(ENTQUANT_VERSION);
  QApplication::setWindowIcon(QIcon(":/icons/entquant-studio.svg"));

  QCommandLineParser cli;
  cli.setApplicationDescription("EntQuant Studio: compress language models with entropy-coded Float8 quantization");
  cli.addHelpOption();
  cli.addVersionOption();
  cli.addPositionalArgument("model", "A model folder, .safetensors file, archive or .eqz file to open");
  const QCommandLineOption shot("screenshot", "Render the window to FILE (PNG) once the model is analyzed, then exit",
                                "FILE");
  const QCommandLineOption select("select", "Select this tensor (screenshot mode)", "TENSOR");
  const QCommandLineOption bits("bits", "Set the target bits (screenshot mode)", "B");
  const QCommandLineOption tab("tab", "Show the layer or depth tab (screenshot mode)", "layer|depth");
  const QCommandLineOption size("size", "Window size (screenshot mode)", "WxH", "1500x950");
  const QCommandLineOption chat("chat", "Load MODEL in the chat pane and ask PROMPT (screenshot mode)", "PROMPT");
  const QCommandLineOption ab("ab", "Ask PROMPT in A/B, MODEL against --original (screenshot mode)", "PROMPT");
  const QCommandLineOption quality("quality", "Run the quality check of MODEL against --original (screenshot mode)");
  const QCommandLineOption original("original", "The original model for --ab and --quality", "PATH");
  const QCommandLineOption windows("windows", "Windows of the quality check (screenshot mode)", "N", "8");
  cli.addOptions({shot, select, bits, tab, size, chat, ab, quality, original, windows});
  cli.process(app);
  const QStringList models = cli.positionalArguments();

  eq::ui::MainWindow window;
  if (!cli.isSet(shot)) {
    window.show();
    if (!models.isEmpty()) window.openPath(models.front());
    return app.exec();
  }

  // Screenshot mode: open, wait for the analysis (and the layer's plots), render, save, quit. Nothing blocks: each
  // step follows a signal; a watchdog gives up after ten minutes.
  const QStringList wh = cli.value(size).split('x');
  window.resize(wh.value(0).toInt() > 0 ? wh.value(0).toInt() : 1500, wh.value(1).toInt() > 0 ? wh.value(1).toInt() : 950);
  window.show();
  const QString out = cli.value(shot);
  int code = 0;
  auto finish = [&] {
    QTimer::singleShot(400, &app, [&] {  // queued replots and layouts settle first
      if (!window.saveScreenshot(out)) {
        std::fprintf(stderr, "entquant-studio: %s: cannot be written\n", qPrintable(out));
        code = 1;
      }
      app.exit(code);
    });
  };
  auto& doc = window.document();
  QObject::connect(&doc, &eq::ui::ModelDocument::openFailed, &app, [&](const QString&, const eq::ui::JobError& e) {
    std::fprintf(stderr, "entquant-studio: %s\n", qPrintable(e.message));
    code = 1;
    finish();
  });
  auto ready = [&] {
    if (cli.isSet(chat)) {
      window.tabs().setCurrentWidget(&window.chat());
      QObject::connect(&window.chat().engine(), &eq::ui::ChatEngine::loaded, &app,
                       [&] { window.chat().send(cli.value(chat)); });
      QObject::connect(&window.chat().engine(), &eq::ui::ChatEngine::answered, &app, [&] { finish(); });
      QObject::connect(&window.chat().engine(), &eq::ui::ChatEngine::loadFailed, &app, [&] { finish(); });
      window.chat().chooseModel(models.front());
      window.chat().setSampling(eq::text::SamplingParams{0.0f});
      window.chat().loadChosen();
      return;
    }
    if (cli.isSet(ab) || cli.isSet(quality)) {
      window.setComparison(cli.value(original), models.front());
      if (cli.isSet(ab)) {
        window.tabs().setCurrentWidget(&window.ab());
        auto& pane = window.ab();
        QObject::connect(&pane, &eq::ui::AbPane::bothAnswered, &app, [&] { finish(); });
        QTimer* poll = new QTimer(&app);  // asks once both are loaded
        QObject::connect(poll, &QTimer::timeout, &app, [&, poll] {
          if (!pane.statusText().startsWith("Both loaded") && !(pane.sequential() && !pane.statusText().isEmpty())) return;
          poll->stop();
          pane.send(cli.value(ab));
        });
        pane.load();
        poll->start(100);
      } else {
        window.tabs().setCurrentWidget(&window.quality());
        QObject::connect(&window.quality(), &eq::ui::QualityCard::finished, &app, [&] { finish(); });
        window.quality().setWindows(512, cli.value(windows).toLongLong());
        window.quality().run();
      }
      return;
    }
    if (cli.isSet(bits)) window.controls().setTargetBits(cli.value(bits).toDouble());
    window.tabs().setCurrentIndex(cli.value(tab) == "layer" ? 0 : 1);
    if (cli.isSet(select)) {
      QObject::connect(&doc, &eq::ui::ModelDocument::layerDetailReady, &app, [&] { finish(); });
      window.selectLayer(cli.value(select));
      if (doc.isEqz()) finish();
    } else {
      finish();
    }
  };
  QObject::connect(&doc, &eq::ui::ModelDocument::analysisFinished, &app, ready);
  QObject::connect(&doc, &eq::ui::ModelDocument::modelOpened, &app, [&] {
    if (doc.isEqz()) ready();
  });
  if (models.isEmpty()) finish();
  else window.openPath(models.front());
  QTimer::singleShot(600000, &app, [&] {
    std::fprintf(stderr, "entquant-studio: the model was not ready within ten minutes\n");
    app.exit(1);
  });
  return app.exec();
}
