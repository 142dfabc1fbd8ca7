// The tokenizer.json reader against an independent reference: real tokenizer.json files (Llama 3, Qwen 3,
// a Llama 2 / Mistral style byte-fallback BPE, Gemma 3; and two variants: mistral_metaspace, the Llama 2 file
// with a Metaspace pre-tokenizer and decoder in place of its normalizer, as newer Mistral files have, and
// qwen3_gpt2_pre_tokenizer, Qwen 3 with GPT-2's ByteLevel regex and add_prefix_space) and the ids,
// and decoded text, that @lenml/tokenizers (transformers.js) gives for a corpus of some 2,500 lines per
// tokenizer. scripts/fetch-test-data.sh fetches both (the ctest fixture hf_tokenizer_data runs it); the tests
// skip only where it found the npm registry unreachable (or ../shared absent). Small hand-written files cover the
// errors, the BOS/EOS rules, lstrip/rstrip/normalized added tokens and characters split across byte-level pieces.
#include "engine/tokenizer/hf_tokenizer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "engine/base/utf8.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "engine/tokenizer/text_streamer.h"
#include "nlohmann/json.hpp"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

using ::nibble::testing::TempDir;
using nlohmann::json;

std::filesystem::path TestDataDir() {
  if (const char* dir = std::getenv("NIBBLE_TEST_DATA")) return dir;
  return NIBBLE_TEST_DATA_DIR;
}

struct ReferenceLine {
  std::string text;
  std::vector<int32_t> ids;
  std::string decoded;
};

std::vector<ReferenceLine> ReadReference(const std::filesystem::path& file) {
  std::vector<ReferenceLine> lines;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    const json parsed = json::parse(line);
    lines.push_back({parsed["text"].get<std::string>(), parsed["ids"].get<std::vector<int32_t>>(),
                     parsed["decoded"].get<std::string>()});
  }
  return lines;
}

// A short printable prefix of `text`, for failure messages.
std::string Quote(const std::string& text) { return json(text.substr(0, 80)).dump(); }

struct RealTokenizer {
  const char* name;  // the folder under .test-data/tokenizers
  bool round_trips;  // whether decode(encode(x)) == x for most texts (not where a prefix space is added)
};

class HfReferenceTest : public ::testing::TestWithParam<RealTokenizer> {};

TEST_P(HfReferenceTest, IdsAndDecodedTextEqualTheReference) {
  const std::filesystem::path data = TestDataDir();
  if (std::filesystem::exists(data / "SKIP")) {
    GTEST_SKIP() << "scripts/fetch-test-data.sh found no test data: " << ReadTextFile(data / "SKIP").value_or("");
  }
  const std::filesystem::path reference = data / "reference" / absl::StrCat(GetParam().name, ".jsonl");
  ASSERT_TRUE(std::filesystem::exists(reference)) << reference << " is missing: run scripts/fetch-test-data.sh";
  const std::filesystem::path dir = data / "tokenizers" / GetParam().name;
  absl::StatusOr<std::unique_ptr<Tokenizer>> loaded = LoadTokenizer(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Tokenizer& tokenizer = **loaded;

  const std::vector<ReferenceLine> lines = ReadReference(reference);
  ASSERT_GE(lines.size(), 2000u);
  int id_mismatches = 0, decode_mismatches = 0, round_trips = 0, stream_mismatches = 0;
  for (const ReferenceLine& line : lines) {
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(line.text);
    ASSERT_TRUE(ids.ok()) << ids.status() << " for " << Quote(line.text);
    if (*ids != line.ids && ++id_mismatches <= 5) {
      ADD_FAILURE() << GetParam().name << ": ids differ from the reference for " << Quote(line.text);
    }
    // The cheap length bound holds: no line encodes to fewer tokens than its bytes / max_token_bytes().
    EXPECT_GE(static_cast<int64_t>(line.ids.size()) * tokenizer.max_token_bytes(),
              static_cast<int64_t>(line.text.size()))
        << GetParam().name << ": " << Quote(line.text);
    const std::string decoded = tokenizer.Decode(line.ids);
    if (decoded != line.decoded && ++decode_mismatches <= 5) {
      ADD_FAILURE() << GetParam().name << ": decode gives " << Quote(decoded) << ", the reference "
                    << Quote(line.decoded);
    }
    if (line.decoded == line.text) {
      ++round_trips;
      EXPECT_EQ(tokenizer.Decode(*ids), line.text);
    }
    // Streamed one token at a time, the text arrives in whole characters and adds up to Decode.
    TextStreamer streamer(tokenizer, StreamStart::kStartsText);
    std::string streamed;
    bool pieces_valid = true;
    for (const int32_t id : line.ids) {
      const std::string piece = streamer.Push(id);
      pieces_valid = pieces_valid && IsValidUtf8(piece);
      streamed += piece;
    }
    streamed += streamer.Finish();
    if ((!pieces_valid || streamed != decoded) && ++stream_mismatches <= 5) {
      ADD_FAILURE() << GetParam().name << ": streaming gives " << Quote(streamed) << " for " << Quote(line.text);
    }
    // Continuing a prompt: the second half streamed after the first half's text (where that text is a
    // prefix of the whole, i.e. the cut is not inside a character) gives the rest of the whole.
    const size_t half = line.ids.size() / 2;
    const std::vector<int32_t> prompt(line.ids.begin(), line.ids.begin() + half);
    const std::string prompt_text = tokenizer.Decode(prompt);
    if (half > 0 && !prompt_text.empty() && decoded.compare(0, prompt_text.size(), prompt_text) == 0) {
      TextStreamer continuation(tokenizer, StreamStart::kContinuesText);
      std::string rest;
      for (size_t i = half; i < line.ids.size(); ++i) rest += continuation.Push(line.ids[i]);
      rest += continuation.Finish();
      if (prompt_text + rest != decoded && ++stream_mismatches <= 5) {
        ADD_FAILURE() << GetParam().name << ": continuing " << Quote(prompt_text) << " streams " << Quote(rest);
      }
    }
  }
  EXPECT_EQ(id_mismatches, 0) << "of " << lines.size() << " lines";
  EXPECT_EQ(decode_mismatches, 0) << "of " << lines.size() << " lines";
  EXPECT_EQ(stream_mismatches, 0) << "of " << lines.size() << " lines";
  if (GetParam().round_trips) EXPECT_GT(round_trips, static_cast<int>(lines.size()) * 9 / 10);
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, HfReferenceTest,
                         ::testing::Values(RealTokenizer{"llama3", true}, RealTokenizer{"qwen3", true},
                                           RealTokenizer{"llama2", true}, RealTokenizer{"gemma3", true},
                                           RealTokenizer{"mistral_metaspace", true},
                                           RealTokenizer{"qwen3_gpt2_pre_tokenizer", false}),
                         [](const ::testing::TestParamInfo<RealTokenizer>& info) {
                           return std::string(info.param.name);
                         });

// A byte-level BPE over the 256 byte characters with merges "h e" -> "he", "he l" -> "hel" (the smallest
// real shape of a Llama 3 style file), with `overrides` merged into the top-level object.
json SmallByteLevelTokenizer(const json& overrides = json::object()) {
  json vocab = json::object();
  const std::string printable =
      "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";
  int id = 0;
  for (const char c : printable) vocab[std::string(1, c)] = id++;
  vocab["\xC4\xA0"] = id++;  // "Ġ": the space
  vocab["he"] = id++;
  vocab["hel"] = id++;
  json tokenizer = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"h e", "he l"})}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"added_tokens", json::array({{{"id", id}, {"content", "<|end|>"}, {"special", true}, {"normalized", false}}})},
  };
  tokenizer.merge_patch(overrides);
  return tokenizer;
}

std::filesystem::path WriteTokenizer(const TempDir& dir, const json& tokenizer) {
  const std::filesystem::path file = dir.path() / "tokenizer.json";
  EXPECT_TRUE(WriteFileContents(file, tokenizer.dump()).ok());
  return file;
}

// SmallByteLevelTokenizer(overrides) is refused with InvalidArgument naming `expected` and the file.
void ExpectRefusedNamingTheFile(const json& overrides, const std::string& expected) {
  TempDir dir;
  const std::filesystem::path file = WriteTokenizer(dir, SmallByteLevelTokenizer(overrides));
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadHfTokenizer(file);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument) << overrides.dump();
  EXPECT_NE(tokenizer.status().message().find(expected), absl::string_view::npos) << tokenizer.status();
  EXPECT_NE(tokenizer.status().message().find(file.string()), absl::string_view::npos) << tokenizer.status();
}

TEST(HfTokenizerTest, SmallByteLevelFileEncodesWithItsMergesAndAddedTokens) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      LoadHfTokenizer(WriteTokenizer(dir, SmallByteLevelTokenizer()));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const int32_t space = 94, he = 95, hel = 96, end = 97;
  absl::StatusOr<std::vector<int32_t>> ids = (*tokenizer)->Encode("hel<|end|> he");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int32_t>{hel, end, space, he}));
  EXPECT_EQ((*tokenizer)->Decode(*ids), "hel he");  // the special token decodes as nothing
  EXPECT_EQ((*tokenizer)->vocab_size(), 98);
  EXPECT_EQ((*tokenizer)->bos_id(), -1);
  EXPECT_TRUE((*tokenizer)->eos_ids().empty());
}

TEST(HfTokenizerTest, BosAndEveryEosComeFromTheConfigFiles) {
  TempDir dir;
  const std::filesystem::path file = WriteTokenizer(dir, SmallByteLevelTokenizer());
  ASSERT_TRUE(WriteFileContents(dir.path() / "tokenizer_config.json",
                                R"({"add_bos_token": true, "bos_token": "he", "eos_token": {"content": "<|end|>"}})")
                  .ok());
  ASSERT_TRUE(WriteFileContents(dir.path() / "generation_config.json", R"({"eos_token_id": [96, 94]})").ok());
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadHfTokenizer(file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->bos_id(), 95);
  EXPECT_EQ((*tokenizer)->eos_id(), 96);
  const std::vector<int32_t> eos((*tokenizer)->eos_ids().begin(), (*tokenizer)->eos_ids().end());
  EXPECT_EQ(eos, (std::vector<int32_t>{96, 94, 97}));
}

TEST(HfTokenizerTest, BosComesFromThePostProcessorTemplateWhenAddBosTokenIsAbsent) {
  TempDir dir;
  const json post_processor = {{"post_processor",
                                {{"type", "TemplateProcessing"},
                                 {"single", json::array({{{"SpecialToken", {{"id", "<|end|>"}, {"type_id", 0}}}},
                                                         {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})}}}};
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      LoadHfTokenizer(WriteTokenizer(dir, SmallByteLevelTokenizer(post_processor)));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->bos_id(), 97);
}

TEST(HfTokenizerTest, AnEosIdOutsideTheVocabularyIsAnErrorNamingTheFile) {
  TempDir dir;
  const std::filesystem::path file = WriteTokenizer(dir, SmallByteLevelTokenizer());
  ASSERT_TRUE(WriteFileContents(dir.path() / "generation_config.json", R"({"eos_token_id": 5000})").ok());
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadHfTokenizer(file);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tokenizer.status().message().find("generation_config.json"), absl::string_view::npos) << tokenizer.status();
}

TEST(HfTokenizerTest, AddedTokensTakeTheWhitespaceTheyStripAndNormalizedOnesMatchAfterNormalizing) {
  TempDir dir;
  json tokenizer = SmallByteLevelTokenizer();
  tokenizer["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", "X"}}}, {"content", "Y"}};
  tokenizer["added_tokens"].push_back(
      {{"id", 98}, {"content", "[m]"}, {"special", false}, {"lstrip", true}, {"rstrip", true}, {"normalized", false}});
  tokenizer["added_tokens"].push_back({{"id", 99}, {"content", "YY"}, {"special", false}, {"normalized", true}});
  absl::StatusOr<std::unique_ptr<Tokenizer>> loaded = LoadHfTokenizer(WriteTokenizer(dir, tokenizer));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  absl::StatusOr<std::vector<int32_t>> ids = (*loaded)->Encode("he  [m]  he XX");
  ASSERT_TRUE(ids.ok()) << ids.status();
  const int32_t space = 94, he = 95;
  // "he" + "  [m]  " (both runs of spaces taken by the token) + "he" + " " + "XX" normalized to "YY".
  EXPECT_EQ(*ids, (std::vector<int32_t>{he, 98, he, space, 99}));
  EXPECT_EQ((*loaded)->Decode(*ids), "he[m]he YY");
}

TEST(HfTokenizerTest, DigitsSplitsNumbersOffBeforeTheMerges) {
  // Merges "a 1" (rank 2) and "1 2" (rank 3): without a split "a12" is "a1" + "2".
  const int32_t a = 64, one = 16, two = 17, a_one = 98, one_two = 99;
  for (const auto& [individual, expected] :
       std::vector<std::pair<bool, std::vector<int32_t>>>{{false, {a, one_two}}, {true, {a, one, two}}}) {
    TempDir dir;
    json tokenizer = SmallByteLevelTokenizer();
    tokenizer["model"]["vocab"]["a1"] = a_one;
    tokenizer["model"]["vocab"]["12"] = one_two;
    tokenizer["model"]["merges"].push_back("a 1");
    tokenizer["model"]["merges"].push_back("1 2");
    tokenizer["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", individual}},
                                       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
    absl::StatusOr<std::unique_ptr<Tokenizer>> loaded = LoadHfTokenizer(WriteTokenizer(dir, tokenizer));
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->Encode("a12").value(), expected) << "individual_digits " << individual;
  }
  TempDir dir;
  json unsplit = SmallByteLevelTokenizer();
  unsplit["model"]["vocab"]["a1"] = a_one;
  unsplit["model"]["vocab"]["12"] = one_two;
  unsplit["model"]["merges"].push_back("a 1");
  unsplit["model"]["merges"].push_back("1 2");
  unsplit["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  absl::StatusOr<std::unique_ptr<Tokenizer>> loaded = LoadHfTokenizer(WriteTokenizer(dir, unsplit));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->Encode("a12").value(), (std::vector<int32_t>{a_one, two}));  // one piece: "a1" + "2"
}

TEST(HfTokenizerTest, UnsupportedComponentsAreErrorsNamingTheTypeAndTheFile) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"normalizer", {{"type", "Lowercase"}}}}, "normalizer type \"Lowercase\""},
      {{{"pre_tokenizer", {{"type", "Whitespace"}}}}, "pre_tokenizer type \"Whitespace\""},
      {{{"decoder", {{"type", "WordPiece"}}}}, "decoder type \"WordPiece\""},
      {{{"model", {{"type", "Unigram"}}}}, "model type \"Unigram\""},
      {{{"model", {{"continuing_subword_prefix", "##"}}}}, "continuing_subword_prefix"},
      {{{"decoder",
         {{"type", "Sequence"},
          {"decoders",
           json::array({{{"type", "Fuse"}}, {{"type", "Strip"}, {"content", " "}, {"start", 0}, {"stop", 1}}})}}}},
       "stop > 0 after Fuse"},
      {{{"added_tokens", json::array({{{"id", 3}, {"content", "x"}, {"single_word", true}}})}}, "single_word"},
      {{{"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}}}},
       "regex does not compile"},
  };
  for (const auto& [overrides, expected] : cases) ExpectRefusedNamingTheFile(overrides, expected);
}

// Found by tests/fuzz (fuzz_hf_tokenizer): an optional field of the wrong type was read with json::value(), which
// threw out of LoadHfTokenizer (a server loading such a file from its store died in std::terminate).
TEST(HfTokenizerTest, OptionalFieldsOfTheWrongTypeAreErrorsNamingTheFieldAndTheFile) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"added_tokens", json::array({{{"id", 3}, {"content", "x"}, {"special", "yes"}}})}}, "\"special\""},
      {{{"added_tokens", json::array({{{"id", 3}, {"content", "x"}, {"normalized", 1}}})}}, "\"normalized\""},
      {{{"model", {{"byte_fallback", "true"}}}}, "\"byte_fallback\""},
      {{{"model", {{"type", 7}}}}, "\"type\""},
      {{{"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", 2}}}}, "\"behavior\""},
      {{{"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", false}}}}, "\"replacement\""},
      {{{"decoder", {{"type", "Metaspace"}, {"replacement", json::array()}}}}, "\"replacement\""},
      {{{"decoder", {{"type", "Strip"}, {"content", " "}, {"start", "1"}}}}, "\"start\""},
      {{{"decoder", {{"type", "Strip"}, {"content", " "}, {"stop", 4294967296}}}}, "start, stop in [0, 2^31)"},
  };
  for (const auto& [overrides, expected] : cases) ExpectRefusedNamingTheFile(overrides, expected);
  // A post-processor whose type is not a string names no BOS (it is read for nothing else).
  TempDir dir;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      LoadHfTokenizer(WriteTokenizer(dir, SmallByteLevelTokenizer({{"post_processor", {{"type", 3}}}})));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->bos_id(), -1);
}

TEST(HfTokenizerTest, BytePiecesThatSplitACharacterStreamWholeCharacters) {
  // "日" is E6 97 A5: with pieces for "\xE6\x97" and "\xA5" only, it takes two tokens, neither valid alone.
  TempDir dir;
  json tokenizer = SmallByteLevelTokenizer();
  json& vocab = tokenizer["model"]["vocab"];
  vocab["\xC3\xA6"] = 98;           // byte E6 ("æ": printable, stands for itself)
  vocab["\xC4\xB9"] = 99;           // byte 97 (not printable: U+0139)
  vocab["\xC2\xA5"] = 100;          // byte A5 ("¥")
  vocab["\xC3\xA6\xC4\xB9"] = 101;  // E6 97
  tokenizer["model"]["merges"].push_back("\xC3\xA6 \xC4\xB9");
  absl::StatusOr<std::unique_ptr<Tokenizer>> loaded = LoadHfTokenizer(WriteTokenizer(dir, tokenizer));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  absl::StatusOr<std::vector<int32_t>> ids = (*loaded)->Encode("\xE6\x97\xA5");
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(*ids, (std::vector<int32_t>{101, 100}));
  EXPECT_TRUE((*loaded)->IsByteToken(101));
  TextStreamer streamer(**loaded, StreamStart::kStartsText);
  EXPECT_EQ(streamer.Push(101), "");
  EXPECT_EQ(streamer.Push(100), "\xE6\x97\xA5");
  const std::vector<int32_t> cut_short = {101};
  EXPECT_EQ((*loaded)->Decode(cut_short), "\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short: U+FFFD per byte
}

}  // namespace
}  // namespace nibble
