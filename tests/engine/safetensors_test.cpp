// Crafted safetensors headers: shapes whose element or byte count overflows 64 bits, dimensions at or above
// 2^63, and offsets that disagree with the shape are errors naming the tensor, never a tensor that promises
// more data than the file holds.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/safetensors.h"

namespace latent {
namespace {

// A safetensors image: u64-LE header length, the header, then `data_bytes` zero bytes.
std::string image(const std::string& header, size_t data_bytes = 0) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_bytes, '\0');
}

Result<SafetensorsHeader> parse(const std::string& img) {
  return parse_safetensors(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "x.safetensors");
}

TEST(Safetensors, ElementCountThatWrapsToZeroIsAnError) {
  // 2^32 * 2^32 floats: an unchecked int64 product wraps to 0, which matched data_offsets [0, 0].
  auto r = parse(image(R"({"t": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})"));
  ASSERT_FALSE(r.ok()) << "a tensor of 2^64 floats was accepted with 0 bytes of data";
  EXPECT_NE(r.error().message.find("tensor t: shape [4294967296, 4294967296] of F32 needs more than 2^64 bytes"),
            std::string::npos)
      << r.error().message;
}

TEST(Safetensors, ByteCountThatWrapsIsAnError) {
  // 2^62 elements fit in int64, but 2^62 * 4 bytes wraps to 0.
  auto r = parse(image(R"({"t": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}})"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("needs more than 2^64 bytes"), std::string::npos) << r.error().message;
}

TEST(Safetensors, DimensionAtOrAbove2To63IsAnError) {
  auto r = parse(image(R"({"t": {"dtype": "F8_E4M3", "shape": [18446744073709551615], "data_offsets": [0, 1]}})", 1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expected non-negative integer dimensions below 2^63, found [18446744073709551615]"),
            std::string::npos)
      << r.error().message;
}

TEST(Safetensors, ShapeLargerThanTheDataSectionIsAnError) {
  auto r = parse(image(R"({"t": {"dtype": "F32", "shape": [1024, 1024], "data_offsets": [0, 16]}})", 16));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("needs 4194304 bytes, expected at most the 16 bytes of the data section"),
            std::string::npos)
      << r.error().message;
}

TEST(Safetensors, ZeroSizedAndOrdinaryTensorsParse) {
  auto r = parse(image(R"({"__metadata__": {"format": "pt"}, "e": {"dtype": "F32", "shape": [0, 7], )"
                       R"("data_offsets": [0, 0]}, "t": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}})",
                       12));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tensors.at("t").numel(), 6);
  EXPECT_EQ(r->tensors.at("t").nbytes, 12u);
  EXPECT_EQ(r->tensors.at("e").numel(), 0);
  EXPECT_EQ(r->metadata.at("format"), "pt");
}

TEST(Safetensors, OpenRefusesACraftedFileOnDisk) {
  const auto path = std::filesystem::temp_directory_path() / ("latent_st_" + std::to_string(::getpid()));
  {
    std::ofstream out(path, std::ios::binary);
    out << image(R"({"w": {"dtype": "BF16", "shape": [9223372036854775807, 2], "data_offsets": [0, 0]}})");
  }
  auto f = SafetensorsFile::open(path.string());
  std::filesystem::remove(path);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find(path.string() + ": tensor w: shape"), std::string::npos) << f.error().message;
}

TEST(Safetensors, CheckedNbytes) {
  EXPECT_EQ(checked_nbytes({}, 4), 4u);
  EXPECT_EQ(checked_nbytes({3, 5}, 2), 30u);
  EXPECT_EQ(checked_nbytes({-1}, 4), std::nullopt);
  EXPECT_EQ(checked_nbytes({INT64_MAX, 2}, 1), std::nullopt);     // element count above 2^63
  EXPECT_EQ(checked_nbytes({int64_t{1} << 62, 2}, 1), std::nullopt);  // element count 2^63
  EXPECT_EQ(checked_nbytes({int64_t{1} << 62}, 2), uint64_t{1} << 63);
}

}  // namespace
}  // namespace latent
