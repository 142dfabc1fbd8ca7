// Fuzzes a SentencePiece tokenizer.model through nibble's module (engine/tokenizer/sentencepiece_tokenizer.h,
// libsentencepiece opened by sentencepiece_bridge.h): the input is the serialized model. libsentencepiece
// itself is Debian's, not instrumented, so coverage guides only nibble's side; its crashes still show. A model
// that loads is exercised (exercise_tokenizer.h) on a fixed text.
#include <cstddef>
#include <cstdint>

#include "engine/tokenizer/sentencepiece_tokenizer.h"
#include "tests/fuzz/exercise_tokenizer.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  const std::filesystem::path path = fuzz::ScratchDir() / "tokenizer.model";
  fuzz::WriteOrDie(path, fuzz::AsText(data, size));
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadSentencePieceTokenizer(path);
  if (!tokenizer.ok()) return 0;
  fuzz::ExerciseTokenizer(**tokenizer, "Once upon a time,  there was \xE6\x97\xA5 a cat.\n\t<s> 42");
  return 0;
}
