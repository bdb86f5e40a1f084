#include "save_file.h"

#include <QCoreApplication>
#include <QSaveFile>

namespace eq::ui {

QString saveFile(const QString& path, const QByteArray& bytes) {
  QSaveFile out(path);
  if (!out.open(QIODevice::WriteOnly))
    return QCoreApplication::translate("saveFile", "%1: cannot be written (%2)").arg(path, out.errorString());
  if (out.write(bytes) != bytes.size() || !out.commit())
    return QCoreApplication::translate("saveFile", "%1: writing failed (%2); the file is unchanged")
        .arg(path, out.errorString());
  return {};
}

}  // namespace eq::ui
