#pragma once
// Writing a file the user asked for (exports): all or nothing. The bytes go to a temporary file beside the target,
// which replaces the target only once everything is written; a full disk or a failed write leaves the old file.
#include <QByteArray>
#include <QString>

namespace eq::ui {

// Empty on success, else one sentence naming the file and the problem.
QString saveFile(const QString& path, const QByteArray& bytes);

}  // namespace eq::ui
