#include "lsp/agent/agent_session.h"

#include <deque>

#include "engine/chat/deepseek_chat.h"
#include "kernels/base/log.h"
#include "lsp/agent/workspace_files.h"
#include "lsp/uri.h"

namespace latent::lsp::agent {
namespace {

constexpr const char* kSystemPrompt =
    "You are Latent's coding agent, working in the user's workspace through tools. Read before you edit: "
    "read_file returns a file's text and version. Edit with the edit tool, naming a definition by `symbol` "
    "(Outer.inner) or one exact, unique `old` text, and pass the version you read; a refused edit says which "
    "check failed: read again and retry. Never rewrite a whole file. Commands run only after the user approves "
    "them. When the task is done, answer with a short summary and no tool call.";

constexpr size_t kMaxAttachedBytes = 32000;

Json range_json(std::string_view text, uint32_t start, uint32_t end, PositionEncoding enc) {
  Position a = position_of(text, start, enc), b = position_of(text, end, enc);
  return {{"start", {{"line", a.line}, {"character", a.character}}}, {"end", {{"line", b.line}, {"character", b.character}}}};
}

}  // namespace

struct AgentSession::Task {
  std::string id;
  TaskRequest request;
  std::mutex mu;
  std::condition_variable cv;
  bool cancelled = false;
  bool finished = false;
  bool task_approved = false;
  std::deque<std::string> user_messages;
  std::optional<TaskResponse> response;  // the answer to what the task waits for
  bool waiting = false;
  // The model turn in flight: its output so far and whether it ended.
  uint64_t turn = 0;
  std::string output;
  std::optional<Result<CompletionUsage>> turn_result;
  CompletionBackend::Handle handle = 0;
  // Client replies (apply_edit, run_command) for the request `reply_seq`.
  uint64_t reply_seq = 0;
  std::optional<Result<Json>> reply;
  struct Applied {
    int edit_id;
    ProposedEdit edit;
  };
  std::vector<Applied> applied;
  int next_edit = 1;
  std::thread thread;
};

AgentSession::AgentSession(AssistantCore& core, CompletionBackend* model, AgentClient& client, AgentOptions options)
    : core_(core), model_(model), client_(client), options_(options) {}

AgentSession::~AgentSession() {
  std::vector<std::shared_ptr<Task>> tasks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, t] : tasks_) tasks.push_back(t);
  }
  for (auto& t : tasks) (void)cancel(t->id);
  for (auto& t : tasks) {
    if (t->thread.joinable()) t->thread.join();
  }
}

ToolContext AgentSession::tool_context() const {
  ToolContext ctx;
  ctx.roots = core_.index().roots();
  ctx.documents = &core_.documents();
  ctx.index = &core_.index();
  return ctx;
}

Result<std::string> AgentSession::start(TaskRequest request) {
  if (!model_) return make_error(ErrorCode::kUnsupported, "agent: no model is loaded: start latentd with --model DIR");
  if (request.task.empty()) return make_error(ErrorCode::kInvalidArgument, "agent: expected a task, found an empty text");
  auto task = std::make_shared<Task>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t running = 0;
    for (auto& [id, t] : tasks_) {
      std::lock_guard<std::mutex> tl(t->mu);
      running += t->finished ? 0 : 1;
    }
    if (running >= options_.max_tasks) {
      return make_error(ErrorCode::kResourceExhausted, "agent: expected at most " + std::to_string(options_.max_tasks) +
                                                           " running tasks, found " + std::to_string(running + 1));
    }
    task->id = "task-" + std::to_string(next_id_++);
    task->request = std::move(request);
    tasks_[task->id] = task;
  }
  task->thread = std::thread([this, task] { run(task); });
  return task->id;
}

Status AgentSession::respond(const std::string& task_id, TaskResponse response) {
  std::shared_ptr<Task> t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return make_error(ErrorCode::kNotFound, "agent: no task " + task_id);
    t = it->second;
  }
  std::lock_guard<std::mutex> lock(t->mu);
  if (t->finished) return make_error(ErrorCode::kInvalidArgument, "agent: task " + task_id + " has ended");
  if (response.approve.has_value()) {
    if (!t->waiting) {
      return make_error(ErrorCode::kInvalidArgument,
                        "agent: task " + task_id + " waits for no approval; expected only a message");
    }
    t->response = std::move(response);
  } else if (!response.message.empty()) {
    t->user_messages.push_back(response.message);  // read before the next model turn
  } else {
    return make_error(ErrorCode::kInvalidArgument, "agent: expected approve, reject or a message, found none");
  }
  t->cv.notify_all();
  return Status::Ok();
}

Status AgentSession::cancel(const std::string& task_id) {
  std::shared_ptr<Task> t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return make_error(ErrorCode::kNotFound, "agent: no task " + task_id);
    t = it->second;
  }
  CompletionBackend::Handle h = 0;
  {
    std::lock_guard<std::mutex> lock(t->mu);
    if (t->finished || t->cancelled) return Status::Ok();
    t->cancelled = true;
    h = t->turn_result ? 0 : t->handle;
    t->cv.notify_all();
  }
  if (h != 0 && model_) model_->cancel(h);
  return Status::Ok();
}

bool AgentSession::wait(const std::string& task_id, std::chrono::milliseconds timeout) {
  std::shared_ptr<Task> t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return false;
    t = it->second;
  }
  std::unique_lock<std::mutex> lock(t->mu);
  return t->cv.wait_for(lock, timeout, [&] { return t->finished; });
}

Status AgentSession::revert(const std::string& task_id) {
  std::shared_ptr<Task> t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return make_error(ErrorCode::kNotFound, "agent: no task " + task_id);
    t = it->second;
  }
  std::vector<Task::Applied> applied;
  {
    std::lock_guard<std::mutex> lock(t->mu);
    if (!t->finished) return make_error(ErrorCode::kInvalidArgument, "agent: task " + task_id + " is still running; cancel it first");
    applied = t->applied;
  }
  if (applied.empty()) return make_error(ErrorCode::kInvalidArgument, "agent: task " + task_id + " applied no edit");
  // Per file: the text before the task's first edit and after its last one.
  struct FileState {
    std::string uri, original, last;
    bool created = false;
  };
  std::map<std::string, FileState> files;
  std::vector<std::string> order;
  for (const auto& a : applied) {
    auto [it, fresh] = files.try_emplace(a.edit.absolute);
    if (fresh) {
      it->second.uri = a.edit.uri;
      it->second.original = a.edit.before;
      it->second.created = a.edit.create;
      order.push_back(a.edit.absolute);
    }
    it->second.last = a.edit.after;
  }
  ToolContext ctx = tool_context();
  Json changes = Json::array();
  for (const auto& path : order) {
    const FileState& f = files[path];
    auto now = current_text(ctx, path);
    if (!now.ok() || !now->exists || now->text != f.last) {
      return make_error(ErrorCode::kInvalidArgument, "agent: cannot revert task " + task_id + ": " + path +
                                                          " changed since the agent's last edit (nothing was reverted)");
    }
    if (f.created) {
      changes.push_back({{"kind", "delete"}, {"uri", f.uri}});
      continue;
    }
    // Only the span that differs is replaced: the common prefix and suffix stay untouched.
    const std::string& cur = now->text;
    size_t head = 0;
    while (head < cur.size() && head < f.original.size() && cur[head] == f.original[head]) ++head;
    size_t tail = 0;
    while (tail < cur.size() - head && tail < f.original.size() - head &&
           cur[cur.size() - 1 - tail] == f.original[f.original.size() - 1 - tail]) ++tail;
    Json edit = {{"range", range_json(cur, static_cast<uint32_t>(head), static_cast<uint32_t>(cur.size() - tail), options_.encoding)},
                 {"newText", f.original.substr(head, f.original.size() - tail - head)}};
    Json version = now->version.number ? Json(*now->version.number) : Json();
    changes.push_back({{"textDocument", {{"uri", f.uri}, {"version", version}}}, {"edits", Json::array({edit})}});
  }
  Json we = {{"documentChanges", changes}};
  client_.apply_edit("Latent: revert " + task_id, we, [this, t, applied](Result<bool> r) {
    bool ok = r.ok() && *r;
    for (const auto& a : applied) {
      client_.update(t->id, {{"kind", "edit"}, {"editId", a.edit_id}, {"state", ok ? "reverted" : "failed"},
                             {"path", a.edit.relative}, {"uri", a.edit.uri}});
    }
    if (ok) {
      std::lock_guard<std::mutex> lock(t->mu);
      t->applied.clear();
    }
  });
  return Status::Ok();
}

void AgentSession::run(const std::shared_ptr<Task>& t) {
  const std::string id = t->id;
  auto update = [&](Json u) { client_.update(id, u); };
  auto status = [&](const std::string& state, int step, const std::string& message) {
    update({{"kind", "status"}, {"state", state}, {"step", step}, {"message", message}});
  };
  auto cancelled = [&] {
    std::lock_guard<std::mutex> lock(t->mu);
    return t->cancelled;
  };
  // Says what the task waits for, then waits for the response (approve/reject) or a cancel; nullopt when
  // cancelled. The task accepts a response from before the client hears that it waits.
  auto wait_response = [&](int step, const std::string& what) -> std::optional<TaskResponse> {
    {
      std::lock_guard<std::mutex> lock(t->mu);
      t->waiting = true;
      t->response.reset();
    }
    status("waiting", step, what);
    std::unique_lock<std::mutex> lock(t->mu);
    t->cv.wait(lock, [&] { return t->cancelled || t->response.has_value(); });
    t->waiting = false;
    if (t->cancelled) return std::nullopt;
    auto r = std::move(t->response);
    t->response.reset();
    return r;
  };
  // Sends a client request and waits for its reply; nullopt when cancelled meanwhile.
  auto client_call = [&](auto send) -> std::optional<Result<Json>> {
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lock(t->mu);
      seq = ++t->reply_seq;
      t->reply.reset();
    }
    send([t, seq](Result<Json> r) {
      std::lock_guard<std::mutex> lock(t->mu);
      if (t->reply_seq != seq) return;
      t->reply = std::move(r);
      t->cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(t->mu);
    t->cv.wait(lock, [&] { return t->cancelled || t->reply.has_value(); });
    if (t->cancelled) return std::nullopt;
    return std::move(*t->reply);
  };

  ToolContext ctx = tool_context();
  std::vector<ChatMessage> messages;
  messages.push_back(ChatMessage{"system", std::string(kSystemPrompt), {}});
  std::string user = t->request.task;
  for (const auto& uri : t->request.documents) {
    auto f = current_text(ctx, uri_to_path(uri));
    if (!f.ok() || !f->exists) continue;
    user += "\n\nFile " + f->relative + " (version " +
            (f->version.number ? std::to_string(*f->version.number) : f->version.hash) + "):\n```\n" +
            f->text.substr(0, kMaxAttachedBytes) + (f->text.size() > kMaxAttachedBytes ? "\n...(truncated)" : "") + "\n```";
  }
  if (t->request.selection) user += "\n\nSelected text:\n```\n" + t->request.selection->substr(0, kMaxAttachedBytes) + "\n```";
  messages.push_back(ChatMessage{"user", user, {}});

  std::string end_state = "stopped", end_message = "the step limit (" + std::to_string(options_.max_steps) + ") was reached";
  for (int step = 1; step <= options_.max_steps; ++step) {
    {
      std::lock_guard<std::mutex> lock(t->mu);
      while (!t->user_messages.empty()) {
        messages.push_back(ChatMessage{"user", t->user_messages.front(), {}});
        t->user_messages.pop_front();
      }
    }
    if (cancelled()) {
      end_state = "cancelled", end_message = "cancelled by the user";
      break;
    }
    status("running", step, "model turn " + std::to_string(step));
    chat::Conversation conv;
    conv.messages = messages;
    conv.tools = tool_definitions();
    auto plan = chat::plan_chat(conv);
    if (!plan.ok()) {
      end_state = "error", end_message = plan.error().message;
      break;
    }
    CompletionJob job;
    job.chat = plan->messages;
    job.prefill = plan->prefill;
    job.prompt = render_chat(ChatFormat::kDeepseekV3, plan->messages, true, std::string(chat::kBos),
                             std::string(chat::kEos)) + plan->prefill;
    job.doc_key = "agent:" + id;
    job.tenant = options_.tenant;
    job.tenant_weight = options_.tenant_weight;
    job.priority = 1;  // below keystroke completions (10)
    job.max_tokens = options_.max_tokens;
    job.time_budget = options_.turn_budget;
    job.stop = {std::string(chat::kCallsEnd), std::string(chat::kEos)};
    uint64_t turn;
    {
      std::lock_guard<std::mutex> lock(t->mu);
      turn = ++t->turn;
      t->output.clear();
      t->turn_result.reset();
    }
    auto handle = model_->start(
        std::move(job),
        [t, turn](std::string_view delta) {
          std::lock_guard<std::mutex> lock(t->mu);
          if (t->turn != turn) return;
          t->output.append(delta);
          t->cv.notify_all();
        },
        [t, turn](Result<CompletionUsage> r) {
          std::lock_guard<std::mutex> lock(t->mu);
          if (t->turn != turn) return;
          t->turn_result = std::move(r);
          t->cv.notify_all();
        });
    CompletionBackend::Handle to_cancel = 0;
    {
      std::lock_guard<std::mutex> lock(t->mu);
      t->handle = handle;
      if (t->cancelled && !t->turn_result) to_cancel = handle;
    }
    if (to_cancel) model_->cancel(to_cancel);
    // Stream the model's text as it comes; tool calls are reported once parsed, below.
    chat::StreamParser parser;
    size_t seen = 0;
    std::string output;
    std::optional<Result<CompletionUsage>> result;
    for (;;) {
      std::string fresh;
      {
        std::unique_lock<std::mutex> lock(t->mu);
        t->cv.wait(lock, [&] { return t->cancelled || t->turn_result.has_value() || t->output.size() > seen; });
        fresh = t->output.substr(seen);
        seen = t->output.size();
        if (t->cancelled) break;
        if (t->turn_result && fresh.empty()) {
          result = std::move(t->turn_result);
          break;
        }
      }
      output += fresh;
      auto d = parser.push(fresh);
      if (!d.content.empty()) update({{"kind", "text"}, {"step", step}, {"text", d.content}});
    }
    if (!result) {
      if (handle) model_->cancel(handle);
      end_state = "cancelled", end_message = "cancelled by the user";
      break;
    }
    auto tail = parser.finish();
    if (!tail.content.empty()) update({{"kind", "text"}, {"step", step}, {"text", tail.content}});
    if (!result->ok()) {
      bool was_cancelled = result->error().code == ErrorCode::kCancelled;
      end_state = was_cancelled ? "cancelled" : "error";
      end_message = "model: " + result->error().message;
      break;
    }
    auto parsed = chat::parse_output(plan->prefill + output);
    // DeepSeek-V3's template renders an assistant turn's tool calls only when it has no content (text before
    // the calls was streamed to the user and is not sent back).
    ChatMessage assistant{"assistant", parsed.tool_calls.empty() ? std::optional<std::string>(parsed.content) : std::nullopt, {}};
    for (const auto& c : parsed.tool_calls) assistant.tool_calls.push_back(ChatToolCall{c.type, c.name, c.arguments});
    messages.push_back(assistant);
    if (parsed.tool_calls.empty()) {
      end_state = "done", end_message = parsed.content;
      break;
    }
    bool stop = false;
    for (size_t i = 0; i < parsed.tool_calls.size() && !stop; ++i) {
      const auto& call = parsed.tool_calls[i];
      std::string call_id = "call-" + std::to_string(step) + "-" + std::to_string(i + 1);
      update({{"kind", "toolCall"}, {"step", step}, {"callId", call_id}, {"name", call.name}, {"arguments", call.arguments}});
      Json args = Json::parse(call.arguments, nullptr, false);
      ToolOutput out;
      if (args.is_discarded()) {
        out.ok = false;
        out.result = {{"error", call.name + ": expected the arguments as JSON, found '" + call.arguments.substr(0, 200) + "'"}};
      } else {
        out = run_tool(tool_context(), call.name, args);
      }
      if (out.ok && out.edit) {
        ProposedEdit& e = *out.edit;
        int edit_id;
        {
          std::lock_guard<std::mutex> lock(t->mu);
          edit_id = t->next_edit++;
        }
        Json range = e.create ? Json() : range_json(e.before, e.start_byte, e.end_byte, options_.encoding);
        Json shown = {{"kind", "edit"}, {"editId", edit_id}, {"path", e.relative}, {"uri", e.uri}, {"range", range},
                      {"oldText", e.old_text}, {"newText", e.new_text}, {"description", e.description},
                      {"create", e.create}};
        shown["state"] = "proposed";
        update(shown);
        bool approved;
        std::string message;
        {
          std::unique_lock<std::mutex> lock(t->mu);
          approved = t->request.approval == Approval::kTask && t->task_approved;
        }
        if (!approved) {
          auto r = wait_response(step, "approve or reject edit " + std::to_string(edit_id) + ": " + e.description);
          if (!r) {
            stop = true;
            end_state = "cancelled", end_message = "cancelled by the user";
            break;
          }
          approved = *r->approve;
          message = r->message;
          if (approved && t->request.approval == Approval::kTask) {
            std::lock_guard<std::mutex> lock(t->mu);
            t->task_approved = true;
          }
          status("running", step, approved ? "edit approved" : "edit rejected");
        }
        if (!approved) {
          shown["state"] = "rejected";
          update(shown);
          out.ok = false;
          out.result = {{"error", "the user rejected this edit"}, {"message", message}};
        } else {
          // The file may have changed while the user looked: the edit applies only to the text it was checked on.
          auto now = current_text(tool_context(), e.absolute);
          bool current = now.ok() && (e.create ? !now->exists : (now->exists && now->text == e.before));
          Json we;
          if (e.create) {
            we = {{"documentChanges",
                   Json::array({{{"kind", "create"}, {"uri", e.uri}, {"options", {{"overwrite", false}, {"ignoreIfExists", false}}}},
                                {{"textDocument", {{"uri", e.uri}, {"version", nullptr}}},
                                 {"edits", Json::array({{{"range", range_json("", 0, 0, options_.encoding)}, {"newText", e.new_text}}})}}})}};
          } else {
            // A versioned edit: the editor refuses it when its buffer is not at the version the edit was checked
            // against (null: the file is not open, the editor reads it from disk).
            Json version = current && now->version.number ? Json(*now->version.number) : Json();
            we = {{"documentChanges", Json::array({{{"textDocument", {{"uri", e.uri}, {"version", version}}},
                                                    {"edits", Json::array({{{"range", range}, {"newText", e.new_text}}})}}})}};
          }
          std::optional<Result<Json>> reply;
          if (current) {
            reply = client_call([&](std::function<void(Result<Json>)> done) {
              client_.apply_edit("Latent: " + e.description, we, [done](Result<bool> r) {
                if (!r.ok()) done(r.error());
                else done(Json(*r));
              });
            });
            if (!reply) {
              stop = true;
              end_state = "cancelled", end_message = "cancelled by the user";
              break;
            }
          }
          if (!current) {
            shown["state"] = "failed";
            update(shown);
            out.ok = false;
            out.result = {{"error", "edit refused (stale): " + e.relative + " changed while waiting for approval; read it again"}};
          } else if (!reply->ok() || !(**reply).is_boolean() || !(**reply).get<bool>()) {
            shown["state"] = "failed";
            update(shown);
            out.ok = false;
            out.result = {{"error", "the editor did not apply the edit" +
                                        (reply->ok() ? std::string() : ": " + reply->error().message)}};
          } else {
            shown["state"] = "applied";
            update(shown);
            {
              std::lock_guard<std::mutex> lock(t->mu);
              t->applied.push_back(Task::Applied{edit_id, e});
            }
            out.result = {{"applied", e.description}, {"path", e.relative}, {"version", content_version(e.after)}};
            if (!message.empty()) out.result["userMessage"] = message;
          }
        }
      } else if (out.ok && out.command) {
        Json request = *out.command;
        request["taskId"] = id;
        status("waiting", step, "the editor asks the user to run: " + request["command"].get<std::string>());
        auto reply = client_call([&](std::function<void(Result<Json>)> done) { client_.run_command(id, request, done); });
        if (!reply) {
          stop = true;
          end_state = "cancelled", end_message = "cancelled by the user";
          break;
        }
        status("running", step, "command finished");
        if (reply->ok()) {
          out.result = **reply;
        } else {
          out.ok = false;
          out.result = {{"error", "run_command: " + reply->error().message}};
        }
      }
      update({{"kind", "toolResult"}, {"step", step}, {"callId", call_id}, {"name", call.name}, {"ok", out.ok},
              {"result", out.result}});
      messages.push_back(ChatMessage{"tool", out.result.dump(-1, ' ', false, Json::error_handler_t::replace), {}});
    }
    if (stop) break;
  }
  // Ended before the client hears it, so that a revert right after the last status is accepted.
  {
    std::lock_guard<std::mutex> lock(t->mu);
    t->finished = true;
  }
  status(end_state, 0, end_message);
  std::lock_guard<std::mutex> lock(t->mu);
  t->cv.notify_all();
}

}  // namespace latent::lsp::agent
