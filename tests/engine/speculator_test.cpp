#include "engine/speculator.h"

#include <gtest/gtest.h>

namespace latent {
namespace {

TEST(Speculator, NgramDraftFollowsTheMostRecentEarlierOccurrence) {
  std::vector<int32_t> seq = {1, 2, 3, 4, 5, 9, 2, 3, 7, 8, 2, 3};
  // Suffix [2, 3] occurred at 1 and 6; the latest (6) is followed by 7, 8, 2.
  EXPECT_EQ(ngram_draft(seq, {}, 3), (std::vector<int32_t>{7, 8, 2}));
  // Longer matches win: [9, 2, 3] only at 5.
  std::vector<int32_t> seq2 = {9, 2, 3, 4, 2, 3, 5, 9, 2, 3};
  EXPECT_EQ(ngram_draft(seq2, {}, 2), (std::vector<int32_t>{4, 2}));
}

TEST(Speculator, NgramDraftSearchesTheContextAndCanFindNothing) {
  std::vector<int32_t> seq = {10, 11, 12};
  std::vector<int32_t> ctx = {5, 11, 12, 13, 14, 15};
  EXPECT_EQ(ngram_draft(seq, ctx, 2), (std::vector<int32_t>{13, 14}));
  EXPECT_TRUE(ngram_draft(seq, {}, 4).empty());
  EXPECT_TRUE(ngram_draft(std::vector<int32_t>{1}, {}, 4).empty());
  EXPECT_TRUE(ngram_draft(seq, ctx, 0).empty());
}

TEST(Speculator, AutoPrefersNgramThenMtp) {
  EXPECT_EQ(choose_draft_source(SpecMode::kAuto, true, true), DraftSource::kNgram);
  EXPECT_EQ(choose_draft_source(SpecMode::kAuto, true, false), DraftSource::kMtp);
  EXPECT_EQ(choose_draft_source(SpecMode::kAuto, false, false), DraftSource::kNone);
  EXPECT_EQ(choose_draft_source(SpecMode::kMtp, false, true), DraftSource::kNone);
  EXPECT_EQ(choose_draft_source(SpecMode::kNone, true, true), DraftSource::kNone);
  SpecMode m;
  ASSERT_TRUE(parse_spec_mode("ngram", &m));
  EXPECT_EQ(m, SpecMode::kNgram);
  EXPECT_FALSE(parse_spec_mode("fast", &m));
}

}  // namespace
}  // namespace latent
