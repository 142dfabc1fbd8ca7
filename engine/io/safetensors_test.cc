#include "engine/io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/io/tensor_source.h"
#include "nlohmann/json.hpp"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A tensor of `dtype` and `shape` whose bytes are 0, 1, 2, ... (mod 251) plus `salt`.
HostTensor Pattern(DType dtype, Shape shape, int salt = 0) {
  std::vector<std::byte> bytes(static_cast<size_t>(shape.numel()) * DTypeSize(dtype));
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>((i + salt) % 251);
  return HostTensor::FromBytes(std::move(bytes), dtype, shape);
}

std::vector<std::byte> BytesOf(const HostTensor& tensor) { return {tensor.data, tensor.data + tensor.bytes()}; }

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::stringstream text;
  text << stream.rdbuf();
  return text.str();
}

void WriteFile(const std::filesystem::path& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary) << contents;
}

// A safetensors file from raw parts: header length `length` (the header's size when negative), the header
// text and `data_bytes` bytes of data.
std::string RawFile(const std::string& header, size_t data_bytes, int64_t length = -1) {
  const uint64_t n = length < 0 ? header.size() : static_cast<uint64_t>(length);
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out + header + std::string(data_bytes, '\0');
}

std::vector<NamedTensor> MixedTensors() {
  return {
      {"a.f16_odd", Pattern(DType::kF16, Shape{5}, 1)},  // 10 bytes: would misalign what follows
      {"b.f32", Pattern(DType::kF32, Shape{2, 3}, 2)},   {"c.bf16", Pattern(DType::kBF16, Shape{3, 1, 2}, 3)},
      {"d.i32", Pattern(DType::kI32, Shape{4, 2}, 4)},   {"e.i64", Pattern(DType::kI64, Shape{3}, 5)},
      {"f.u8", Pattern(DType::kU8, Shape{7}, 6)},        {"g.scalar", Pattern(DType::kF32, Shape{}, 7)},
      {"h.empty", Pattern(DType::kF16, Shape{0, 4}, 8)}, {"i.rank4", Pattern(DType::kF32, Shape{2, 1, 2, 3}, 9)},
  };
}

TEST(SafetensorsTest, RoundTripsEveryDtypeByteForByte) {
  testing::TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  const std::vector<NamedTensor> tensors = MixedTensors();
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}, {"note", "hi"}}).ok());

  const auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "hi"}}));
  EXPECT_EQ(file->names().size(), tensors.size());
  for (const NamedTensor& expected : tensors) {
    SCOPED_TRACE(expected.name);
    const auto tensor = file->Get(expected.name);
    ASSERT_TRUE(tensor.ok()) << tensor.status();
    EXPECT_EQ(tensor->dtype, expected.tensor.dtype);
    EXPECT_EQ(tensor->shape, expected.tensor.shape);
    EXPECT_EQ(BytesOf(*tensor), BytesOf(expected.tensor));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(tensor->data) % DTypeSize(tensor->dtype), 0u);
  }
}

TEST(SafetensorsTest, HeaderIsPaddedJsonAndDataIsLaidOutLargestElementsFirst) {
  testing::TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, MixedTensors()).ok());
  const std::string raw = ReadFile(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(raw[i]);
  EXPECT_EQ(n % 8, 0u);
  const json header = json::parse(raw.substr(8, n));  // trailing spaces are JSON whitespace
  EXPECT_FALSE(header.contains("__metadata__"));      // none given: none written (transformers needs none or "pt")
  // I64 first, then the 4-byte dtypes in the given order, then the 2-byte ones, then U8.
  EXPECT_EQ(header["e.i64"]["data_offsets"], json({0, 24}));
  EXPECT_EQ(header["b.f32"]["data_offsets"], json({24, 48}));
  EXPECT_EQ(header["d.i32"]["data_offsets"], json({48, 80}));
  EXPECT_EQ(header["g.scalar"]["data_offsets"], json({80, 84}));
  EXPECT_EQ(header["i.rank4"]["data_offsets"], json({84, 132}));
  EXPECT_EQ(header["a.f16_odd"]["data_offsets"], json({132, 142}));
  EXPECT_EQ(header["c.bf16"]["data_offsets"], json({142, 154}));
  EXPECT_EQ(header["h.empty"]["data_offsets"], json({154, 154}));
  EXPECT_EQ(header["f.u8"]["data_offsets"], json({154, 161}));
  EXPECT_EQ(header["c.bf16"]["shape"], json({3, 1, 2}));
  EXPECT_EQ(header["c.bf16"]["dtype"], "BF16");
  EXPECT_EQ(raw.size(), 8 + n + 161);
  // The data is the tensors' bytes verbatim.
  const HostTensor f32 = Pattern(DType::kF32, Shape{2, 3}, 2);
  EXPECT_EQ(std::memcmp(raw.data() + 8 + n + 24, f32.data, 24), 0);
}

TEST(SafetensorsTest, TensorsKeepTheMappingAliveAfterTheFileObjectIsGone) {
  testing::TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  const HostTensor expected = Pattern(DType::kF32, Shape{64, 3});
  ASSERT_TRUE(WriteSafetensors(path, std::vector<NamedTensor>{{"w", expected}}).ok());
  HostTensor tensor;
  {
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    tensor = *file->Get("w");
  }
  std::filesystem::remove(path);  // the mapping outlives the name, too
  EXPECT_EQ(BytesOf(tensor), BytesOf(expected));
}

TEST(SafetensorsTest, ReadsUnalignedTensorsFromOtherWritersByCopying) {
  testing::TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  // A U8 of 1 byte first, then an F32 at data offset 1: with the data section at a multiple of 8, the F32
  // sits at an odd address in the mapping.
  std::string header =
      R"({"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string raw = RawFile(header, 0);
  raw.push_back('\x07');
  const float values[2] = {1.5f, -2.25f};
  raw.append(reinterpret_cast<const char*>(values), sizeof(values));
  WriteFile(path, raw);
  const auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const auto f = file->Get("f");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f->data) % 4, 0u);
  EXPECT_THAT(f->ToFloats(), ElementsAre(1.5f, -2.25f));
  EXPECT_EQ(file->Get("u")->span<uint8_t>()[0], 7);
}

// --- Bad files -------------------------------------------------------------------------------------------

class BadSafetensorsTest : public ::testing::Test {
 protected:
  // Writes `contents` and returns the error of opening it.
  absl::Status OpenError(const std::string& contents) {
    WriteFile(path_, contents);
    const auto file = SafetensorsFile::Open(path_);
    EXPECT_FALSE(file.ok());
    return file.ok() ? absl::OkStatus() : file.status();
  }
  std::string Entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return R"({"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}";
  }

  testing::TempDir dir_;
  std::filesystem::path path_ = dir_.path() / "model.safetensors";
};

TEST_F(BadSafetensorsTest, FileShorterThanTheLengthField) {
  const absl::Status status = OpenError("abc");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr(path_.string()), HasSubstr("3 bytes, too short")));
}

TEST_F(BadSafetensorsTest, HeaderLengthPastTheEndOfTheFile) {
  EXPECT_THAT(
      OpenError(RawFile("{}", 0, 4000)).message(),
      AllOf(HasSubstr(path_.string()), HasSubstr("header length 4000 runs past the end of the file (10 bytes)")));
}

TEST_F(BadSafetensorsTest, AbsurdHeaderLength) {
  EXPECT_THAT(OpenError(RawFile("{}", 0, int64_t{1} << 60)).message(),
              AllOf(HasSubstr(path_.string()), HasSubstr("above the 100000000-byte limit")));
}

TEST_F(BadSafetensorsTest, HeaderIsNotJson) {
  EXPECT_THAT(OpenError(RawFile("{\"a\": [1, 2", 0)).message(),
              AllOf(HasSubstr(path_.string()), HasSubstr("not valid JSON")));
}

TEST_F(BadSafetensorsTest, HeaderIsNotAnObject) {
  EXPECT_THAT(OpenError(RawFile("[1, 2]", 0)).message(),
              AllOf(HasSubstr(path_.string()), HasSubstr("not a JSON object")));
}

TEST_F(BadSafetensorsTest, UnknownDtype) {
  EXPECT_THAT(OpenError(RawFile(R"({"w":)" + Entry("F64", "[2]", "[0,16]") + "}", 16)).message(),
              AllOf(HasSubstr(path_.string()), HasSubstr("tensor \"w\""), HasSubstr("unsupported dtype \"F64\"")));
}

TEST_F(BadSafetensorsTest, NegativeOrNonIntegerShape) {
  EXPECT_THAT(OpenError(RawFile(R"({"w":)" + Entry("F32", "[-2]", "[0,8]") + "}", 8)).message(),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("must hold non-negative integers")));
  EXPECT_THAT(OpenError(RawFile(R"({"w":)" + Entry("F32", "[2.5]", "[0,8]") + "}", 8)).message(),
              HasSubstr("must hold non-negative integers"));
}

TEST_F(BadSafetensorsTest, RankAboveFour) {
  EXPECT_THAT(OpenError(RawFile(R"({"w":)" + Entry("U8", "[1,1,1,1,2]", "[0,2]") + "}", 2)).message(),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("rank 5")));
}

TEST_F(BadSafetensorsTest, OffsetsPastTheEndOfTheData) {
  const absl::Status status =
      OpenError(RawFile(R"({"model.norm.weight":)" + Entry("U8", "[8990]", "[10,9000]") + "}", 8000));
  EXPECT_EQ(status.message(), path_.string() +
                                  ": tensor \"model.norm.weight\": data_offsets [10, 9000] run past "
                                  "the end of the data (8000 bytes)");
}

TEST_F(BadSafetensorsTest, TruncatedDataSection) {
  testing::TempDir dir;
  const auto good = dir.path() / "good.safetensors";
  ASSERT_TRUE(WriteSafetensors(good, std::vector<NamedTensor>{{"w", Pattern(DType::kF32, Shape{16})}}).ok());
  const std::string raw = ReadFile(good);
  EXPECT_THAT(OpenError(raw.substr(0, raw.size() - 5)).message(),
              AllOf(HasSubstr(path_.string()), HasSubstr("tensor \"w\""), HasSubstr("run past the end of the data")));
}

TEST_F(BadSafetensorsTest, OffsetsDisagreeWithShapeAndDtype) {
  EXPECT_THAT(OpenError(RawFile(R"({"w":)" + Entry("F16", "[2,3]", "[0,8]") + "}", 16)).message(),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("data_offsets [0, 8] span 8 bytes but F16 [2, 3] needs 12")));
  EXPECT_THAT(OpenError(RawFile(R"({"w":)" + Entry("F32", "[4294967296,4294967296,16]", "[0,8]") + "}", 16)).message(),
              HasSubstr("needs more than 2^64"));
}

TEST_F(BadSafetensorsTest, OffsetsEndBeforeTheyBegin) {
  EXPECT_THAT(OpenError(RawFile(R"({"w":)" + Entry("U8", "[0]", "[8,4]") + "}", 16)).message(),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("end before they begin")));
}

TEST_F(BadSafetensorsTest, MalformedOffsets) {
  EXPECT_THAT(OpenError(RawFile(R"({"w":)" + Entry("U8", "[4]", "[0]") + "}", 4)).message(),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("two non-negative integers")));
  EXPECT_THAT(OpenError(RawFile(R"({"w":{"dtype":"U8","shape":[4]}})", 4)).message(), HasSubstr("data_offsets"));
  EXPECT_THAT(OpenError(RawFile(R"({"w":7})", 4)).message(), HasSubstr("not an object"));
}

TEST_F(BadSafetensorsTest, OverlappingTensors) {
  const std::string header =
      R"({"a":)" + Entry("F32", "[4]", "[0,16]") + R"(,"b":)" + Entry("F32", "[2]", "[12,20]") + "}";
  EXPECT_THAT(OpenError(RawFile(header, 20)).message(),
              AllOf(HasSubstr(path_.string()), HasSubstr("tensor \"b\": data_offsets [12, 20] overlap those of "
                                                         "tensor \"a\" [0, 16]")));
}

TEST_F(BadSafetensorsTest, MetadataMustMapStringsToStrings) {
  EXPECT_THAT(OpenError(RawFile(R"({"__metadata__":{"format":3}})", 0)).message(),
              AllOf(HasSubstr(path_.string()), HasSubstr("\"__metadata__\" entry \"format\" must be a string")));
}

TEST_F(BadSafetensorsTest, MissingFileAndDirectory) {
  const auto missing = SafetensorsFile::Open(dir_.path() / "nope.safetensors");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope.safetensors: cannot open"));
  EXPECT_THAT(SafetensorsFile::Open(dir_.path()).status().message(), HasSubstr("not a regular file"));
}

TEST(SafetensorsTest, ZeroSizeTensorsMayShareAnOffset) {
  testing::TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  WriteFile(path, RawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                          8));
  const auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_THAT(file->names(), ElementsAre("a", "b"));
  EXPECT_EQ(file->Get("missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(file->Get("missing").status().message(), HasSubstr(path.string() + ": no tensor \"missing\""));
}

// --- Writer errors -----------------------------------------------------------------------------------------

TEST(SafetensorsWriterTest, RejectsDuplicateAndReservedNames) {
  testing::TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  const HostTensor t = Pattern(DType::kU8, Shape{2});
  EXPECT_THAT(WriteSafetensors(path, std::vector<NamedTensor>{{"a", t}, {"a", t}}).message(),
              AllOf(HasSubstr(path.string()), HasSubstr("tensor \"a\" is given twice")));
  EXPECT_THAT(WriteSafetensors(path, std::vector<NamedTensor>{{"__metadata__", t}}).message(),
              HasSubstr("cannot write a tensor named \"__metadata__\""));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SafetensorsWriterTest, RejectsNamesThatAreNotUtf8) {
  testing::TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  const auto status = WriteSafetensors(path, std::vector<NamedTensor>{{"bad\xff", Pattern(DType::kU8, Shape{2})}});
  EXPECT_THAT(status.message(), AllOf(HasSubstr(path.string()), HasSubstr("cannot encode the header")));
}

TEST(SafetensorsWriterTest, MissingDirectoryNamesTheFile) {
  testing::TempDir dir;
  const auto path = dir.path() / "no" / "such" / "t.safetensors";
  const auto status = WriteSafetensors(path, std::vector<NamedTensor>{{"a", Pattern(DType::kU8, Shape{2})}});
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), AllOf(HasSubstr(path.string()), HasSubstr("cannot create")));
}

// A full disk, simulated with a file size limit: every write is checked, the error names the file and no
// short file is left behind.
TEST(SafetensorsWriterTest, FailedWriteIsAnErrorAndLeavesNoPartialFile) {
  testing::TempDir dir;
  const auto path = dir.path() / "big.safetensors";
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct sigaction ignore {
  }, old_action{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const absl::Status status =
      WriteSafetensors(path, std::vector<NamedTensor>{{"w", Pattern(DType::kF32, Shape{64, 64})}}, {}, /*sync=*/true);
  setrlimit(RLIMIT_FSIZE, &saved);
  sigaction(SIGXFSZ, &old_action, nullptr);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), AllOf(HasSubstr(path.string()), HasSubstr("write failed")));
  EXPECT_FALSE(std::filesystem::exists(path));
}

// --- Shards and model directories --------------------------------------------------------------------------

TEST(SafetensorsShardsTest, SplitsLikeTransformersAndReadsBack) {
  testing::TempDir dir;
  std::vector<NamedTensor> tensors;
  for (int i = 0; i < 5; ++i) tensors.push_back({"t" + std::to_string(i), Pattern(DType::kF32, Shape{10}, i)});  // 40 B
  tensors.push_back({"huge", Pattern(DType::kU8, Shape{300}, 9)});
  tensors.push_back({"last", Pattern(DType::kF16, Shape{3}, 10)});
  // Limit 100: [t0 t1] [t2 t3] [t4] [huge] [last]
  const auto written = WriteSafetensorsShards(dir.path(), tensors, 100, {{"format", "pt"}});
  ASSERT_TRUE(written.ok()) << written.status();
  ASSERT_EQ(written->size(), 6u);
  EXPECT_EQ((*written)[0], dir.path() / "model-00001-of-00005.safetensors");
  EXPECT_EQ((*written)[4], dir.path() / "model-00005-of-00005.safetensors");
  EXPECT_EQ((*written)[5], dir.path() / "model.safetensors.index.json");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "model.safetensors"));

  const json index = json::parse(ReadFile((*written)[5]));
  EXPECT_EQ(index["metadata"]["total_size"], 5 * 40 + 300 + 6);
  EXPECT_EQ(index["weight_map"]["t1"], "model-00001-of-00005.safetensors");
  EXPECT_EQ(index["weight_map"]["t2"], "model-00002-of-00005.safetensors");
  EXPECT_EQ(index["weight_map"]["t4"], "model-00003-of-00005.safetensors");
  EXPECT_EQ(index["weight_map"]["huge"], "model-00004-of-00005.safetensors");
  EXPECT_EQ(index["weight_map"]["last"], "model-00005-of-00005.safetensors");

  const auto source = TensorSource::Open(dir.path());
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_THAT(source->names(), ElementsAre("huge", "last", "t0", "t1", "t2", "t3", "t4"));
  for (const NamedTensor& expected : tensors) {
    const auto tensor = source->Get(expected.name);
    ASSERT_TRUE(tensor.ok()) << tensor.status();
    EXPECT_EQ(BytesOf(*tensor), BytesOf(expected.tensor)) << expected.name;
    EXPECT_EQ(tensor->shape, expected.tensor.shape);
  }
  EXPECT_EQ(source->FileOf("t3"), (dir.path() / "model-00002-of-00005.safetensors").string());
}

TEST(SafetensorsShardsTest, OneShardIsASingleModelFile) {
  testing::TempDir dir;
  const std::vector<NamedTensor> tensors = MixedTensors();
  const auto written = WriteSafetensorsShards(dir.path(), tensors);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_THAT(*written, ElementsAre(dir.path() / "model.safetensors"));
  const auto source = TensorSource::Open(dir.path());
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_TRUE(source->Has("d.i32"));
  EXPECT_FALSE(source->Has("z"));
  EXPECT_EQ(BytesOf(*source->Get("d.i32")), BytesOf(tensors[3].tensor));
  const auto missing = source->Get("z");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), AllOf(HasSubstr(dir.path().string()), HasSubstr("no tensor \"z\"")));
}

TEST(SafetensorsShardsTest, RewritingRemovesTheWeightsOfAnEarlierWrite) {
  testing::TempDir dir;
  std::vector<NamedTensor> tensors;
  for (int i = 0; i < 3; ++i) tensors.push_back({"t" + std::to_string(i), Pattern(DType::kF32, Shape{10}, i)});
  WriteFile(dir.path() / "model-00009-of-00009.safetensors", "stale");
  WriteFile(dir.path() / "model-notes.safetensors", "not a shard name: kept");
  ASSERT_TRUE(WriteSafetensorsShards(dir.path(), tensors, 40).ok());
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "model-00009-of-00009.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "model-00003-of-00003.safetensors"));

  ASSERT_TRUE(WriteSafetensorsShards(dir.path(), std::span(tensors).first(1)).ok());  // now one file
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) files.push_back(entry.path().filename());
  EXPECT_THAT(files, ::testing::UnorderedElementsAre("model.safetensors", "model-notes.safetensors"));
  EXPECT_THAT(TensorSource::Open(dir.path())->names(), ElementsAre("t0"));

  ASSERT_TRUE(WriteSafetensorsShards(dir.path(), tensors, 40).ok());  // and sharded again
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "model.safetensors"));
  EXPECT_EQ(TensorSource::Open(dir.path())->names().size(), 3u);
}

TEST(TensorSourceTest, EmptyDirectoryIsNotFound) {
  testing::TempDir dir;
  const auto source = TensorSource::Open(dir.path());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(source.status().message(), AllOf(HasSubstr(dir.path().string()), HasSubstr("model.safetensors")));
}

TEST(TensorSourceTest, IndexShardNamesMustStayInTheDirectory) {
  testing::TempDir dir;
  for (const std::string shard : {"../outside.safetensors", "sub/x.safetensors", ".."}) {
    WriteFile(dir.path() / "model.safetensors.index.json", json({{"weight_map", {{"w", shard}}}}).dump());
    const auto source = TensorSource::Open(dir.path());
    EXPECT_THAT(source.status().message(), AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("tensor \"w\""),
                                                 HasSubstr("not a file name in the model directory")))
        << shard;
  }
}

TEST(TensorSourceTest, IndexListsATensorItsShardLacks) {
  testing::TempDir dir;
  ASSERT_TRUE(
      WriteSafetensors(dir.path() / "a.safetensors", std::vector<NamedTensor>{{"x", Pattern(DType::kU8, Shape{1})}})
          .ok());
  WriteFile(dir.path() / "model.safetensors.index.json",
            json({{"weight_map", {{"x", "a.safetensors"}, {"y", "a.safetensors"}}}}).dump());
  EXPECT_THAT(TensorSource::Open(dir.path()).status().message(),
              AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("lists tensor \"y\" in a.safetensors")));
}

TEST(TensorSourceTest, IndexErrors) {
  testing::TempDir dir;
  const auto index = dir.path() / "model.safetensors.index.json";
  WriteFile(index, "{not json");
  EXPECT_THAT(TensorSource::Open(dir.path()).status().message(),
              AllOf(HasSubstr(index.string()), HasSubstr("not a JSON object")));
  WriteFile(index, R"({"metadata": {}})");
  EXPECT_THAT(TensorSource::Open(dir.path()).status().message(), HasSubstr("\"weight_map\" is missing"));
  WriteFile(index, R"({"weight_map": {"w": "absent.safetensors"}})");
  const auto missing_shard = TensorSource::Open(dir.path());
  EXPECT_EQ(missing_shard.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing_shard.status().message(), HasSubstr("absent.safetensors: cannot open"));
}

TEST(TensorSourceTest, FromTensorsRejectsDuplicates) {
  const HostTensor t = Pattern(DType::kU8, Shape{1});
  EXPECT_THAT(TensorSource::FromTensors(std::vector<NamedTensor>{{"a", t}, {"a", t}}, "memory").status().message(),
              HasSubstr("memory: tensor \"a\" is given twice"));
}

}  // namespace
}  // namespace nibble
