#include "model/model_source.h"

#include "common/error.h"

#include <algorithm>
#include <set>

namespace eq {
namespace fs = std::filesystem;

namespace {
constexpr const char* kIndexName = "model.safetensors.index.json";

bool hasExtension(const fs::path& p, std::string_view ext) {
  const std::string s = p.filename().string();
  return s.size() > ext.size() && s.compare(s.size() - ext.size(), ext.size(), ext) == 0;
}

bool looksLikeModelFolder(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "config.json", ec)) return true;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && hasExtension(e.path(), ".safetensors")) return true;
  return false;
}

// An archive usually holds one top folder ("my-model/config.json"); descend into single folders until the files.
fs::path findModelRoot(const fs::path& extracted, const fs::path& archive) {
  fs::path dir = extracted;
  for (int depth = 0; depth < 4; ++depth) {
    if (looksLikeModelFolder(dir)) return dir;
    std::vector<fs::path> subdirs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_directory()) subdirs.push_back(e.path());
    if (subdirs.size() != 1) break;
    dir = subdirs.front();
  }
  fail(Errc::NotFound, "{}: the archive holds no model (no config.json or .safetensors file)", archive.string());
}
}  // namespace

std::string_view sourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::Folder: return "folder";
    case SourceKind::SafetensorsFile: return "safetensors";
    case SourceKind::Archive: return "archive";
    case SourceKind::Eqz: return "eqz";
  }
  return "folder";
}

std::unique_ptr<ModelSource> ModelSource::open(const fs::path& path, const OpenOptions& options) {
  auto src = std::unique_ptr<ModelSource>(new ModelSource());
  src->input_ = path;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) fail(Errc::NotFound, "{}: no such file or folder", path.string());
  if (fs::is_directory(status)) {
    src->kind_ = SourceKind::Folder;
    src->openFolder(path);
  } else if (hasExtension(path, ".safetensors")) {
    src->kind_ = SourceKind::SafetensorsFile;
    src->root_ = path.has_parent_path() ? path.parent_path() : fs::path(".");
    src->addFile(path);
    src->indexTensors();
    src->readConfigs(src->root_);
  } else if (isArchivePath(path)) {
    src->kind_ = SourceKind::Archive;
    src->temp_ = std::make_unique<TempDir>("entquant-archive");
    extractArchive(path, src->temp_->path(), options.keepGoing, std::nullopt, options.progress);
    src->openFolder(findModelRoot(src->temp_->path(), path));
  } else {
    fail(Errc::Unsupported, "{}: not a model folder, .safetensors file or archive (.zip, .tar, .tar.gz, .tar.xz, "
         ".tar.zst)", path.string());
  }
  return src;
}

void ModelSource::openFolder(const fs::path& folder) {
  root_ = folder;
  std::error_code ec;
  if (fs::exists(folder / kIndexName, ec)) {
    openShardsFromIndex(folder / kIndexName);
  } else {
    std::vector<fs::path> shards;
    for (const auto& e : fs::directory_iterator(folder, ec))
      if (e.is_regular_file() && hasExtension(e.path(), ".safetensors")) shards.push_back(e.path());
    if (ec) fail(Errc::Io, "{}: cannot list the folder: {}", folder.string(), ec.message());
    if (shards.empty())
      fail(Errc::NotFound, "{}: no .safetensors files in the folder (is this a HuggingFace model folder?)",
           folder.string());
    std::sort(shards.begin(), shards.end());
    for (const auto& s : shards) addFile(s);
  }
  indexTensors();
  readConfigs(folder);
}

void ModelSource::openShardsFromIndex(const fs::path& index) {
  const auto json = readJsonFile(index);
  const std::string label = index.string();
  const auto wm = json.find("weight_map");
  if (!json.is_object() || wm == json.end() || !wm->is_object())
    fail(Errc::InvalidJson, "{}: no \"weight_map\" object", label);
  std::set<std::string> shardNames;
  for (const auto& [tensor, file] : wm->items()) {
    if (!file.is_string()) fail(Errc::InvalidJson, "{}: weight_map entry \"{}\" is not a file name", label, tensor);
    const std::string name = file.get<std::string>();
    const fs::path p(name);
    if (name.empty() || p.is_absolute() || std::any_of(p.begin(), p.end(), [](const fs::path& c) { return c == ".."; }))
      fail(Errc::Corrupt, "{}: shard name \"{}\" is not a file inside the model folder", label, name);
    shardNames.insert(name);
    indexMap_.emplace(tensor, name);
  }
  if (shardNames.empty()) fail(Errc::Corrupt, "{}: weight_map is empty", label);
  std::error_code ec;
  for (const auto& name : shardNames)
    if (!fs::exists(index.parent_path() / name, ec))
      fail(Errc::MissingShard, "{}: missing shard {} (named in {})", index.parent_path().string(), name,
           index.filename().string());
  for (const auto& name : shardNames) addFile(index.parent_path() / name);
}

void ModelSource::addFile(const fs::path& path) { files_.push_back(SafetensorsFile::open(path)); }

void ModelSource::indexTensors() {
  for (std::size_t f = 0; f < files_.size(); ++f) {
    const std::string fileName = files_[f].path().filename().string();
    for (const auto& t : files_[f].tensors()) {
      if (!indexMap_.empty()) {
        const auto it = indexMap_.find(t.name);
        if (it == indexMap_.end()) {
          warnings_.push_back(fmt::format("{}: tensor \"{}\" is not listed in {}; ignored", fileName, t.name, kIndexName));
          continue;
        }
        if (it->second != fileName) continue;  // the index places it elsewhere; that copy is the one used
      }
      const auto [pos, inserted] = byName_.emplace(t.name, tensors_.size());
      if (!inserted)
        fail(Errc::Corrupt, "{}: tensor \"{}\" appears in both {} and {}", root_.string(), t.name,
             files_[tensors_[pos->second].file].path().filename().string(), fileName);
      tensors_.push_back({&t, f, classifyTensor(t.name, t.shape, t.dtype)});
    }
  }
  for (const auto& [tensor, file] : indexMap_)
    if (!byName_.count(tensor))
      fail(Errc::MissingTensor, "{}: tensor \"{}\" is not in shard {} where {} places it", root_.string(), tensor,
           file, kIndexName);
  std::sort(tensors_.begin(), tensors_.end(),
            [](const ModelTensor& a, const ModelTensor& b) { return naturalLess(a.info->name, b.info->name); });
  byName_.clear();
  for (std::size_t i = 0; i < tensors_.size(); ++i) byName_.emplace(tensors_[i].info->name, i);
}

void ModelSource::readConfigs(const fs::path& folder) {
  std::error_code ec;
  const fs::path cfg = folder / "config.json";
  if (fs::exists(cfg, ec)) config_ = parseModelConfig(readJsonFile(cfg), cfg.string());
  else warnings_.push_back("no config.json beside the weights: architecture unknown, the model can be compressed "
                           "but not run");
  const fs::path gen = folder / "generation_config.json";
  if (fs::exists(gen, ec)) generation_ = parseGenerationConfig(readJsonFile(gen), gen.string());
  if (kind_ == SourceKind::SafetensorsFile) return;  // a lone file: the folder's other files are not the model's
  std::set<std::string> weightFiles;
  for (const auto& f : files_) weightFiles.insert(f.path().filename().string());
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && !weightFiles.count(name)) otherFiles_.emplace(name, e.file_size(ec));
  }
}

const ModelTensor* ModelSource::find(const std::string& name) const {
  const auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : &tensors_[it->second];
}

std::vector<std::int64_t> ModelSource::endOfGenerationIds() const {
  if (generation_ && !generation_->eosTokenIds.empty()) return generation_->eosTokenIds;
  if (config_) return config_->eosTokenIds;
  return {};
}

}  // namespace eq
