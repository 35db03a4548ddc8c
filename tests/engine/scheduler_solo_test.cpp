// Keystrokes pre-empt lower-priority work (SchedulerOptions::interactive_solo_tokens): while an interactive
// request is queued, prefilling or in its first tokens, agent and background sequences sit out the step and
// resume after with the output they would have had uninterrupted. Checked by batch membership
// (SchedulerOptions::on_step) and outputs against the cache-checking FakeModel, never by time.
#include <gtest/gtest.h>

#include <vector>

#include "engine/scheduler.h"
#include "tests/engine/serving_fake_model.h"

namespace latent {
namespace {

using testing::FakeModel;
using testing::random_prompt;

struct Collected {
  std::vector<int32_t> tokens;
  std::optional<Event> done;
};

Request make_request(std::vector<int32_t> prompt, int max_tokens, Priority priority, Collected* out) {
  Request r;
  r.prompt = std::move(prompt);
  r.stop.max_tokens = max_tokens;
  r.priority = priority;
  r.on_event = [out](const Event& e) {
    if (e.kind == Event::Kind::kToken) out->tokens.insert(out->tokens.end(), e.tokens.begin(), e.tokens.end());
    if (e.kind != Event::Kind::kToken) out->done = e;
  };
  return r;
}

bool has(const StepBatch& b, RequestId id) {
  for (const auto& m : b.members)
    if (m.id == id) return true;
  return false;
}
const StepBatch::Member* member(const StepBatch& b, RequestId id) {
  for (const auto& m : b.members)
    if (m.id == id) return &m;
  return nullptr;
}

// An agent request decodes; a keystroke's 300-token prompt (three 128-token chunks) arrives. Returns the steps
// recorded from the keystroke's arrival on, and both outputs.
struct SoloRun {
  std::vector<StepBatch> steps;
  Collected agent, key;
  RequestId agent_id = 0, key_id = 0;
};
SoloRun keystroke_during_agent_decode(int solo_tokens, SamplingParams agent_sampling = {}) {
  FakeModel model;
  KvCache cache = FakeModel::make_cache(16);
  SchedulerOptions opt;
  opt.interactive_solo_tokens = solo_tokens;
  SoloRun run;
  bool recording = false;
  opt.on_step = [&](const StepBatch& b) {
    if (recording) run.steps.push_back(b);
  };
  Scheduler sched(model, cache, opt);
  Request ra = make_request(random_prompt(40, 1), 60, Priority::kAgent, &run.agent);
  ra.sampling = agent_sampling;
  run.agent_id = *sched.submit(std::move(ra));
  while (run.agent.tokens.size() < 5) EXPECT_TRUE(sched.step());
  recording = true;
  run.key_id = *sched.submit(make_request(random_prompt(300, 2), 10, Priority::kInteractive, &run.key));
  sched.run_until_idle();
  EXPECT_EQ(run.key.tokens, model.reference(random_prompt(300, 2), 10));
  return run;
}

TEST(SchedulerSolo, KeystrokeRunsAloneUntilItsFirstTokenThenTheAgentResumesUnchanged) {
  SoloRun run = keystroke_during_agent_decode(1);
  ASSERT_TRUE(run.agent.done && run.key.done);
  ASSERT_GE(run.steps.size(), 4u);
  // The keystroke's three prompt chunks (the last one samples its first token) run alone, the agent paused.
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(run.steps[i].members.size(), 1u) << "step " << i;
    EXPECT_EQ(run.steps[i].members[0].id, run.key_id);
    EXPECT_EQ(run.steps[i].members[0].generated, 0);
    EXPECT_EQ(run.steps[i].paused, 1);
  }
  // From its second token on they share steps again: the agent keeps making progress beside it.
  EXPECT_TRUE(has(run.steps[3], run.key_id));
  EXPECT_TRUE(has(run.steps[3], run.agent_id));
  EXPECT_EQ(run.steps[3].paused, 0);
  // The paused agent resumed where it stopped: same output as without the keystroke (the cache-free reference).
  EXPECT_EQ(run.agent.done->finish, FinishReason::kLength);
  EXPECT_EQ(run.agent.tokens, FakeModel().reference(random_prompt(40, 1), 60));
}

TEST(SchedulerSolo, SampledAgentOutputIsTheSameAsAnUninterruptedRun) {
  SamplingParams sp;
  sp.temperature = 0.9f;
  sp.seed = 7;
  SoloRun interrupted = keystroke_during_agent_decode(1, sp);
  // The same agent request alone.
  FakeModel model;
  KvCache cache = FakeModel::make_cache(16);
  Scheduler sched(model, cache);
  Collected alone;
  Request ra = make_request(random_prompt(40, 1), 60, Priority::kAgent, &alone);
  ra.sampling = sp;
  ASSERT_TRUE(sched.submit(std::move(ra)).ok());
  sched.run_until_idle();
  ASSERT_EQ(alone.tokens.size(), 60u);
  EXPECT_EQ(interrupted.agent.tokens, alone.tokens);
}

TEST(SchedulerSolo, SoloTokensSetsHowLongTheKeystrokeRunsAlone) {
  SoloRun four = keystroke_during_agent_decode(4);
  int alone = 0;
  for (const auto& b : four.steps) {
    const auto* k = member(b, four.key_id);
    if (k == nullptr) continue;
    if (k->generated < 4) {
      EXPECT_EQ(b.members.size(), 1u) << "step " << b.step << ": the keystroke had " << k->generated << " tokens";
      ++alone;
    } else {
      EXPECT_TRUE(has(b, four.agent_id)) << "step " << b.step;
    }
  }
  EXPECT_EQ(alone, 3 + 3);  // three prompt chunks (the last gives token 1), then tokens 2, 3 and 4
  EXPECT_EQ(four.agent.tokens, FakeModel().reference(random_prompt(40, 1), 60));

  // 0: shared steps as before (the keystroke's first chunk already has the agent's decode beside it).
  SoloRun shared = keystroke_during_agent_decode(0);
  ASSERT_FALSE(shared.steps.empty());
  EXPECT_TRUE(has(shared.steps[0], shared.key_id));
  EXPECT_TRUE(has(shared.steps[0], shared.agent_id));
  for (const auto& b : shared.steps) EXPECT_EQ(b.paused, 0);
}

TEST(SchedulerSolo, LowerPrioritiesRunWhenNoKeystrokeCanBeScheduled) {
  // One slot, held by the agent: the queued keystroke cannot be admitted until it ends, so the agent must keep
  // running instead of sitting out for a keystroke that cannot run.
  FakeModel model;
  KvCache cache = FakeModel::make_cache(16);
  SchedulerOptions opt;
  opt.max_running = 1;
  std::vector<StepBatch> steps;
  opt.on_step = [&](const StepBatch& b) { steps.push_back(b); };
  Scheduler sched(model, cache, opt);
  Collected agent, key;
  auto pa = random_prompt(20, 3), pk = random_prompt(20, 4);
  const RequestId agent_id = *sched.submit(make_request(pa, 12, Priority::kAgent, &agent));
  ASSERT_TRUE(sched.step());
  const RequestId key_id = *sched.submit(make_request(pk, 4, Priority::kInteractive, &key));
  for (int i = 0; i < 200 && !(agent.done && key.done); ++i) ASSERT_TRUE(sched.step());
  ASSERT_TRUE(agent.done && key.done);
  EXPECT_EQ(agent.tokens, model.reference(pa, 12));
  EXPECT_EQ(key.tokens, model.reference(pk, 4));
  // The agent ran to its end first (the only slot), then the keystroke.
  size_t last_agent = 0, first_key = steps.size();
  for (size_t i = 0; i < steps.size(); ++i) {
    if (has(steps[i], agent_id)) last_agent = i;
    if (has(steps[i], key_id) && first_key == steps.size()) first_key = i;
  }
  EXPECT_LT(last_agent, first_key);
}

TEST(SchedulerSolo, EachKeystrokeOfASupersedingSeriesPausesTheAgentAndItStillFinishes) {
  // Typing: every new request for the document supersedes the previous one. Each new one runs alone until its
  // first token; in between the agent advances; at the end its output is the uninterrupted one.
  FakeModel model;
  KvCache cache = FakeModel::make_cache(32);
  SchedulerOptions opt;
  std::vector<StepBatch> steps;
  opt.on_step = [&](const StepBatch& b) { steps.push_back(b); };
  Scheduler sched(model, cache, opt);
  Collected agent;
  auto pa = random_prompt(30, 5);
  const RequestId agent_id = *sched.submit(make_request(pa, 40, Priority::kAgent, &agent));
  std::vector<Collected> keys(6);
  auto doc = random_prompt(60, 6);
  for (size_t k = 0; k < keys.size(); ++k) {
    ASSERT_TRUE(sched.step());
    ASSERT_TRUE(sched.step());
    doc.push_back(static_cast<int32_t>(k % FakeModel::kVocab));  // one more character typed
    Request r = make_request(doc, 8, Priority::kInteractive, &keys[k]);
    r.document_key = "file:///a.py";
    ASSERT_TRUE(sched.submit(std::move(r)).ok());
  }
  sched.run_until_idle();
  for (size_t k = 0; k + 1 < keys.size(); ++k) {
    ASSERT_TRUE(keys[k].done);
    EXPECT_EQ(keys[k].done->finish, FinishReason::kSuperseded);
  }
  EXPECT_EQ(keys.back().tokens, model.reference(doc, 8));
  ASSERT_TRUE(agent.done);
  EXPECT_EQ(agent.tokens, model.reference(pa, 40));
  int agent_steps = 0;
  for (const auto& b : steps) {
    bool key_first = false;
    for (const auto& m : b.members) key_first |= m.priority == Priority::kInteractive && m.generated == 0;
    if (key_first) {
      EXPECT_FALSE(has(b, agent_id)) << "step " << b.step;
    }
    agent_steps += has(b, agent_id);
  }
  EXPECT_GT(agent_steps, 0);
}

TEST(SchedulerSolo, RankedCandidatesWaitForTheGreedyFirstToken) {
  // A ranked completion: the greedy request (it streams) and three sampled candidates, submitted together.
  // The greedy one's prompt and first token run alone; the candidates join from the next step and finish.
  FakeModel model;
  KvCache cache = FakeModel::make_cache(32);
  SchedulerOptions opt;
  std::vector<StepBatch> steps;
  opt.on_step = [&](const StepBatch& b) { steps.push_back(b); };
  Scheduler sched(model, cache, opt);
  auto prompt = random_prompt(50, 8);
  Collected greedy;
  std::vector<Collected> cands(3);
  const RequestId greedy_id = *sched.submit(make_request(prompt, 6, Priority::kInteractive, &greedy));
  for (auto& c : cands) {
    Request r = make_request(prompt, 6, Priority::kInteractive, &c);
    r.sampling.temperature = 0.8f;
    r.yields_first_tokens = true;
    ASSERT_TRUE(sched.submit(std::move(r)).ok());
  }
  sched.run_until_idle();
  ASSERT_GE(steps.size(), 2u);
  ASSERT_EQ(steps[0].members.size(), 1u);
  EXPECT_EQ(steps[0].members[0].id, greedy_id);
  EXPECT_EQ(steps[0].paused, 3);
  EXPECT_EQ(steps[1].members.size(), 4u);  // the greedy decode beside the three candidates' prompts
  EXPECT_EQ(greedy.tokens, model.reference(prompt, 6));
  for (const auto& c : cands) {
    ASSERT_TRUE(c.done);
    EXPECT_EQ(c.tokens.size(), 6u);
  }
}

}  // namespace
}  // namespace latent
