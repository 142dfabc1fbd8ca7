// Opens libnibble_sentencepiece.so (see sentencepiece_bridge.h) and asks it for a bridge.
#include "engine/tokenizer/sentencepiece_bridge.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

namespace nibble {
namespace {

constexpr char kModuleFile[] = "libnibble_sentencepiece.so";

// Whether the full libprotobuf (not only a lite copy such as libsentencepiece's) is in the process.
bool FullProtobufLoaded() {
  return dlsym(RTLD_DEFAULT, "_ZN6google8protobuf14DescriptorPool14generated_poolEv") != nullptr;
}

std::vector<std::string> ModuleCandidates() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("NIBBLE_SENTENCEPIECE_MODULE"); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  }
#ifdef NIBBLE_SENTENCEPIECE_MODULE
  candidates.emplace_back(NIBBLE_SENTENCEPIECE_MODULE);
#endif
  std::error_code error;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) candidates.push_back((exe.parent_path() / kModuleFile).string());
  return candidates;
}

using LoadFunction = SentencePieceBridge* (*)(const char*, std::string*);

// The module's entry point, opened once per process (the module stays loaded); nullptr with *error set.
LoadFunction OpenModule(std::string* error) {
  static std::once_flag once;
  static LoadFunction load = nullptr;
  static std::string open_error;
  std::call_once(once, [] {
    const int flags = RTLD_NOW | RTLD_LOCAL | (FullProtobufLoaded() ? RTLD_DEEPBIND : 0);
    open_error = std::string(kModuleFile) + " not found (set NIBBLE_SENTENCEPIECE_MODULE)";
    for (const std::string& candidate : ModuleCandidates()) {
      std::error_code missing;
      if (!std::filesystem::exists(candidate, missing)) continue;
      void* handle = dlopen(candidate.c_str(), flags);
      if (handle == nullptr) {
        open_error = std::string("cannot open ") + candidate + ": " + dlerror();
        continue;
      }
      load = reinterpret_cast<LoadFunction>(dlsym(handle, "nibble_sentencepiece_load"));
      if (load != nullptr) return;
      open_error = candidate + " has no nibble_sentencepiece_load";
    }
  });
  if (load == nullptr) *error = open_error;
  return load;
}

}  // namespace

std::unique_ptr<SentencePieceBridge> SentencePieceBridge::Load(const std::string& path, std::string* error) {
  const LoadFunction load = OpenModule(error);
  if (load == nullptr) return nullptr;
  return std::unique_ptr<SentencePieceBridge>(load(path.c_str(), error));
}

}  // namespace nibble
