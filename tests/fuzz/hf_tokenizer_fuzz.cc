// Fuzzes the tokenizer.json reader (engine/tokenizer/hf_tokenizer.h) with the files beside it: the input is
// tokenizer.json, a NUL byte, the text to encode, then (each after a NUL, each optional)
// tokenizer_config.json and generation_config.json. A tokenizer that loads is exercised (exercise_tokenizer.h).
#include <cstddef>
#include <cstdint>

#include "engine/tokenizer/hf_tokenizer.h"
#include "tests/fuzz/exercise_tokenizer.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  const std::vector<absl::string_view> parts = fuzz::SplitOnNul(fuzz::AsText(data, size), 4);
  const std::filesystem::path& dir = fuzz::ScratchDir();
  fuzz::WriteOrDie(dir / "tokenizer.json", parts[0]);
  const char* beside[] = {"tokenizer_config.json", "generation_config.json"};
  for (size_t i = 0; i < 2; ++i) {
    if (parts.size() > i + 2) {
      fuzz::WriteOrDie(dir / beside[i], parts[i + 2]);
    } else {
      fuzz::RemoveIfPresent(dir / beside[i]);
    }
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadHfTokenizer(dir / "tokenizer.json");
  if (!tokenizer.ok()) return 0;
  fuzz::ExerciseTokenizer(**tokenizer, parts.size() > 1 ? parts[1] : "Hello, world! 123 \xC3\xA9t\xC3\xA9\n");
  return 0;
}
