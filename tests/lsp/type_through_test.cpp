// Type-through: typing what a suggestion predicted is served by the same generation. A gated backend double
// lets the test decide when each piece of text arrives, so that every check counts generations started and
// stopped, never time.
#include "lsp/type_through.h"

#include <gtest/gtest.h>

#include <deque>

#include "lsp/assistant_core.h"

namespace latent::lsp {
namespace {

class GatedBackend : public CompletionBackend {
 public:
  struct Started {
    CompletionJob job;
    OnDelta on_delta;
    OnDone on_done;
    bool cancelled = false;
  };
  Handle start(CompletionJob job, OnDelta on_delta, OnDone on_done) override {
    started.push_back(Started{std::move(job), std::move(on_delta), std::move(on_done)});
    return started.size();
  }
  void cancel(Handle h) override { started.at(h - 1).cancelled = true; }
  std::string describe() const override { return "gated test backend"; }
  // The test's hands: stream a piece of job i, or end it.
  void emit(size_t i, const std::string& text) { started.at(i).on_delta(text); }
  void end(size_t i) {
    CompletionUsage u;
    u.finish_reason = "length";
    started.at(i).on_done(u);
  }
  std::vector<Started> started;
};

struct Listener {
  std::vector<std::string> partials;
  std::optional<Result<CompletionOutcome>> done;
  AssistantCore::OnPartial on_partial() {
    return [this](const std::string& t) { partials.push_back(t); };
  }
  AssistantCore::OnDone on_done() {
    return [this](Result<CompletionOutcome> r) { done = std::move(r); };
  }
};

ContentChange insert_at(uint32_t line, uint32_t ch, const std::string& text) {
  ContentChange c;
  c.range = Range{Position{line, ch}, Position{line, ch}};
  c.text = text;
  return c;
}

// The mechanics with the syntax check off: partial results are the streamed text, token by token.
AssistantOptions check(SyntaxMode mode) {
  AssistantOptions o;
  o.syntax = mode;
  o.rank_candidates = 3;  // rank: the greedy job (started first) and two sampled ones
  return o;
}

class TypeThrough : public testing::Test {
 protected:
  explicit TypeThrough(SyntaxMode mode = SyntaxMode::kOff) : core_(check(mode), &backend_) {
    EXPECT_TRUE(core_.open(uri_, "python", 1, "def add(a, b):\n    return \n").ok());
  }
  Result<AssistantCore::Ticket> complete(uint32_t ch, Listener& l) {
    CompletionRequest r;
    r.uri = uri_;
    r.position = Position{1, ch};
    return core_.complete(r, l.on_partial(), l.on_done());
  }
  void type(uint32_t ch, const std::string& text) {
    ASSERT_TRUE(core_.change(uri_, ++version_, {insert_at(1, ch, text)}, PositionEncoding::kUtf16).ok());
  }
  // Listeners outlive the core, whose destructor answers what is still listening.
  Listener& listener() { return listeners_.emplace_back(); }
  GatedBackend backend_;
  std::deque<Listener> listeners_;
  AssistantCore core_;
  std::string uri_ = "file:///w/add.py";
  int version_ = 1;
};

TEST(TypeThroughChecks, InsertedAtAndPredicted) {
  EXPECT_EQ(inserted_at("ab|cd", 3, "ab|xycd"), "xy");
  EXPECT_EQ(inserted_at("ab|cd", 3, "ab|cd"), "");
  EXPECT_EQ(inserted_at("ab|cd", 3, "ab|xcd!"), std::nullopt);  // also changed after the cursor
  EXPECT_EQ(inserted_at("ab|cd", 3, "a|xcd"), std::nullopt);
  EXPECT_EQ(inserted_at("ab", 5, "abc"), std::nullopt);          // offset past the end
  EXPECT_TRUE(predicted("a + b", "a +"));
  EXPECT_FALSE(predicted("a + b", "a -"));
  EXPECT_FALSE(predicted("a", "a + "));
}

// The suggestion streams "a + b"; the user cancels (as the extension does at each keystroke), types "a +" and
// asks again: the same generation answers with the rest, and goes on streaming.
TEST_F(TypeThrough, TypingWhatIsStreamingKeepsTheGeneration) {
  Listener& first = listener();
  ASSERT_TRUE(complete(11, first).ok());
  ASSERT_EQ(backend_.started.size(), 1u);
  backend_.emit(0, "a +");
  ASSERT_FALSE(first.partials.empty());
  EXPECT_EQ(first.partials.back(), "a +");
  core_.cancel(1);
  ASSERT_TRUE(first.done.has_value());
  EXPECT_EQ(first.done->error().code, ErrorCode::kCancelled);
  type(11, "a");
  type(12, " ");
  type(13, "+");
  Listener& second = listener();
  ASSERT_TRUE(complete(14, second).ok());
  EXPECT_EQ(backend_.started.size(), 1u) << "no new generation";
  EXPECT_FALSE(backend_.started[0].cancelled);
  backend_.emit(0, " b\n");
  backend_.end(0);
  ASSERT_TRUE(second.done.has_value() && second.done->ok());
  EXPECT_EQ((*second.done)->text, " b");
  EXPECT_EQ(core_.type_throughs(), 1u);
}

// A finished suggestion serves the keystrokes that type it, without a model step, until it is all typed.
TEST_F(TypeThrough, TypingAFinishedSuggestionIsServedWithoutTheModel) {
  Listener& first = listener();
  ASSERT_TRUE(complete(11, first).ok());
  backend_.emit(0, "a + b");
  backend_.end(0);
  ASSERT_TRUE(first.done.has_value() && first.done->ok());
  EXPECT_EQ((*first.done)->text, "a + b");
  type(11, "a");
  Listener& second = listener();
  ASSERT_TRUE(complete(12, second).ok());
  ASSERT_TRUE(second.done.has_value() && second.done->ok());  // answered within complete()
  EXPECT_EQ((*second.done)->text, " + b");
  type(12, " + ");
  Listener& third = listener();
  ASSERT_TRUE(complete(15, third).ok());
  ASSERT_TRUE(third.done.has_value() && third.done->ok());
  EXPECT_EQ((*third.done)->text, "b");
  EXPECT_EQ(backend_.started.size(), 1u);
  EXPECT_EQ(core_.type_throughs(), 2u);
  // Typing all of it leaves nothing to suggest: the next completion is a new generation.
  type(15, "b");
  Listener& fourth = listener();
  ASSERT_TRUE(complete(16, fourth).ok());
  EXPECT_EQ(backend_.started.size(), 2u);
}

// A keystroke the suggestion did not predict stops its generation at the keystroke, and the next completion
// starts a new one.
TEST_F(TypeThrough, AnUnpredictedKeystrokeStopsTheGeneration) {
  Listener& first = listener();
  ASSERT_TRUE(complete(11, first).ok());
  backend_.emit(0, "a + b");
  core_.cancel(1);
  EXPECT_FALSE(backend_.started[0].cancelled) << "kept for the next keystroke";
  type(11, "x");
  EXPECT_TRUE(backend_.started[0].cancelled);
  Listener& second = listener();
  ASSERT_TRUE(complete(12, second).ok());
  EXPECT_EQ(backend_.started.size(), 2u);
  EXPECT_EQ(core_.type_throughs(), 0u);
}

// A request that is still listening when the user types what it predicted hands the generation over.
TEST_F(TypeThrough, ANewerRequestTakesOverFromOneStillListening) {
  Listener& first = listener();
  ASSERT_TRUE(complete(11, first).ok());
  backend_.emit(0, "a + b");
  type(11, "a");
  Listener& second = listener();
  ASSERT_TRUE(complete(12, second).ok());
  ASSERT_TRUE(first.done.has_value());
  EXPECT_EQ(first.done->error().code, ErrorCode::kCancelled);
  ASSERT_FALSE(second.partials.empty());
  EXPECT_EQ(second.partials.back(), " + b");
  EXPECT_EQ(backend_.started.size(), 1u);
}

// With the syntax check on (latentd's default), only checked whole lines are shown, but keystrokes are matched
// against what the model wrote: typing into the unfinished first line keeps the generation, and the answer
// is the checked text less what was typed.
class TypeThroughChecked : public TypeThrough {
 protected:
  TypeThroughChecked() : TypeThrough(SyntaxMode::kTrim) {}
};

TEST_F(TypeThroughChecked, TypingAnUnshownLineKeepsTheGenerationAndTheAnswerIsChecked) {
  Listener& first = listener();
  ASSERT_TRUE(complete(11, first).ok());
  backend_.emit(0, "a +");
  EXPECT_TRUE(first.partials.empty()) << "an unfinished line is not shown: " << first.partials.back();
  core_.cancel(1);
  type(11, "a");
  EXPECT_FALSE(backend_.started[0].cancelled) << "the user typed what the model wrote";
  Listener& second = listener();
  ASSERT_TRUE(complete(12, second).ok());
  EXPECT_EQ(backend_.started.size(), 1u) << "no new generation";
  // The rest of the line, then a line that breaks the file: the check cuts it.
  backend_.emit(0, " b\n    return )(\n");
  backend_.end(0);
  ASSERT_TRUE(second.done.has_value() && second.done->ok());
  EXPECT_EQ((*second.done)->text, " + b");
  ASSERT_TRUE((*second.done)->syntax.has_value());
  EXPECT_EQ((*second.done)->syntax->action, SyntaxAction::kCut);
  for (const auto& p : second.partials) EXPECT_EQ(p.find(")("), std::string::npos) << p;
  EXPECT_EQ(core_.type_throughs(), 1u);
}

// A keystroke that the model did not write still stops the generation with the check on.
TEST_F(TypeThroughChecked, AnUnpredictedKeystrokeStopsTheGeneration) {
  Listener& first = listener();
  ASSERT_TRUE(complete(11, first).ok());
  backend_.emit(0, "a + b");
  core_.cancel(1);
  type(11, "x");
  EXPECT_TRUE(backend_.started[0].cancelled);
  EXPECT_EQ(core_.type_throughs(), 0u);
}

// rank: the greedy candidate streams and is what keystrokes are matched against; the sampled ones decode beside
// it (jobs 1 and 2), are kept by a predicted keystroke and stopped by any other, and the answer is the best
// verdict among the candidates that begin with what was typed.
class TypeThroughRanked : public TypeThrough {
 protected:
  TypeThroughRanked() : TypeThrough(SyntaxMode::kRank) {}
};

TEST_F(TypeThroughRanked, TypingKeepsEveryCandidateAndTheAnswerIsTheBestOfThoseTyped) {
  Listener& first = listener();
  ASSERT_TRUE(complete(11, first).ok());
  ASSERT_EQ(backend_.started.size(), 3u);
  EXPECT_EQ(backend_.started[0].job.sample, 0);
  EXPECT_EQ(backend_.started[1].job.sample, 1);
  EXPECT_EQ(backend_.started[2].job.sample, 2);
  EXPECT_NE(backend_.started[1].job.doc_key, backend_.started[0].job.doc_key) << "candidates must not supersede each other";
  EXPECT_EQ(backend_.started[1].job.prompt, backend_.started[0].job.prompt);
  backend_.emit(0, "a +");
  core_.cancel(1);
  type(11, "a");
  for (const auto& s : backend_.started) EXPECT_FALSE(s.cancelled) << "the user typed what the model wrote";
  Listener& second = listener();
  ASSERT_TRUE(complete(12, second).ok());
  EXPECT_EQ(backend_.started.size(), 3u) << "no new generation";
  backend_.emit(0, " )(\n");  // the greedy candidate breaks the file
  backend_.end(0);
  EXPECT_FALSE(second.done.has_value()) << "the others are still decoding";
  backend_.emit(2, "b - a - a - a - a\n");  // parses and is longest, but does not begin with the typed "a"
  backend_.end(2);
  backend_.emit(1, "a * b\n");
  backend_.end(1);
  ASSERT_TRUE(second.done.has_value() && second.done->ok());
  EXPECT_EQ((*second.done)->text, " * b");
  ASSERT_TRUE((*second.done)->syntax.has_value());
  EXPECT_EQ((*second.done)->syntax->candidates, 3);
  EXPECT_EQ((*second.done)->syntax->chosen, 1);
}

TEST_F(TypeThroughRanked, AnUnpredictedKeystrokeStopsEveryCandidate) {
  Listener& first = listener();
  ASSERT_TRUE(complete(11, first).ok());
  backend_.emit(0, "a + b");
  backend_.emit(1, "a - b");
  core_.cancel(1);
  type(11, "x");
  ASSERT_EQ(backend_.started.size(), 3u);
  for (const auto& s : backend_.started) EXPECT_TRUE(s.cancelled);
  EXPECT_EQ(core_.type_throughs(), 0u);
}

TEST_F(TypeThroughRanked, ANewCompletionSupersedesEveryCandidate) {
  Listener& first = listener();
  ASSERT_TRUE(complete(11, first).ok());
  backend_.emit(0, "a + b");
  Listener& second = listener();
  ASSERT_TRUE(complete(4, second).ok());  // elsewhere in the line: not what was predicted
  ASSERT_TRUE(first.done.has_value());
  EXPECT_EQ(first.done->error().code, ErrorCode::kCancelled);
  ASSERT_EQ(backend_.started.size(), 6u);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(backend_.started[i].cancelled) << i;
  for (size_t i = 3; i < 6; ++i) EXPECT_FALSE(backend_.started[i].cancelled) << i;
  // A candidate's late text and end after the supersession change nothing.
  backend_.emit(1, "a - b\n");
  backend_.end(1);
  EXPECT_FALSE(second.done.has_value());
}

}  // namespace
}  // namespace latent::lsp
