// A generation request as the engine takes it, its validation against a model, and the events it streams
// back.
//
// GenerationRequest is what a client asks for (the gRPC layer fills it from the proto; the CLI and tests
// fill it directly). PrepareRequest checks it against a model's RequestLimits and tokenizes its prompt;
// every problem is InvalidArgument naming the request id and the field, so nothing invalid reaches the
// scheduler. The scheduler then sends the request's output to the GenerationSink the caller supplied: zero
// or more events with tokens, then exactly one event with `finish` set.
//
// Plain data: copy and move freely. PrepareRequest is a pure function of its arguments (RPC threads call
// it concurrently). GenerationSink's threading is stated on the class.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/runtime/sampling.h"

namespace nibble {

class Tokenizer;

// Request bounds the API documents (proto/nibble/v1/inference.proto) and PrepareRequest enforces.
inline constexpr int32_t kMaxStopStrings = 16;      // stop strings per request
inline constexpr size_t kMaxStopStringBytes = 256;  // bytes of one stop string
inline constexpr size_t kMaxStopTokenIds = 256;     // stop token ids per request (checked at every token)
inline constexpr float kMaxPenalty = 2.0f;          // presence and frequency penalties lie in [-2, 2]

struct GenerationRequest {
  std::string id;  // names the request in messages; ServingEngine::Submit assigns one when empty
  // The prompt: text (encoded with the model's tokenizer, BOS first when add_bos and the tokenizer has one)
  // or token ids (run exactly as given, BOS included where wanted). Exactly one of the two is non-empty.
  std::string prompt;
  std::vector<int32_t> prompt_token_ids;
  bool add_bos = true;
  // Most tokens to generate (> 0); unset: until the context is full. prompt + max_tokens must fit in the
  // context (and in the KV cache: a request that cannot run even alone is refused).
  std::optional<int32_t> max_tokens;
  // Temperature, top-k/p, min-p, penalties, seed (a seeded request repeats exactly; the caller draws a
  // fresh seed for clients that give none) and num_logprobs (the "logprobs" field: 0 for none, otherwise
  // the chosen token's log-probability and the num_logprobs most likely, at most kMaxLogprobs).
  SamplingParams sampling;
  // Generation stops before the first occurrence of any of these in the output text (which then ends just
  // before it); at most kMaxStopStrings, each 1..kMaxStopStringBytes bytes of UTF-8. They need a tokenizer.
  std::vector<std::string> stop;
  // Generation stops at any of these tokens (not sent), and at the model's EOS tokens unless ignore_eos. At
  // most kMaxStopTokenIds.
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  // The client's deadline: a request still waiting or running then ends with DEADLINE_EXCEEDED.
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

// What PrepareRequest checks a request against (ServingEngine's LoadedModel::limits(), Scheduler::limits()).
struct RequestLimits {
  int32_t vocab_size = 0;
  int32_t max_context = 0;  // tokens one sequence may hold, prompt included
  int32_t kv_capacity = 0;  // tokens the whole KV cache holds: a request must fit alone
  std::vector<int32_t> eos_token_ids;
};

// A validated request, ready for the scheduler.
struct PreparedRequest {
  GenerationRequest request;
  std::vector<int32_t> prompt;          // the token ids the model runs (non-empty)
  int32_t max_tokens = 0;               // request.max_tokens, or what the context leaves
  std::vector<int32_t> stop_token_ids;  // request.stop_token_ids, plus EOS unless ignore_eos
  bool continues_text = false;          // the prompt decodes to text: the output continues it
};

// Validates `request` against `limits` and tokenizes its prompt with `tokenizer` (may be null: then the
// request needs prompt_token_ids and no stop strings). InvalidArgument "request <id>: <field> ..." naming
// the first offending field and quoting the value received (never client text): prompt / prompt_token_ids
// (both or neither given, ids outside the vocabulary, no room left in the context), temperature (finite,
// >= 0), top_k (>= 0), top_p ((0, 1]), min_p ([0, 1]), repetition_penalty (finite, > 0), presence_penalty
// and frequency_penalty ([-kMaxPenalty, kMaxPenalty]), logprobs ([0, kMaxLogprobs]), stop (see above),
// stop_token_ids (at most kMaxStopTokenIds, in the vocabulary), max_tokens (> 0, fits the context with the prompt). NaN
// fails every range.
//
// Cheap checks come first: every field but the prompt's token count is checked before the text is
// tokenized, and a text prompt longer than room x Tokenizer::max_token_bytes() bytes (room: the context,
// or the KV cache when smaller) is refused by its length alone, as it cannot encode to fewer tokens than
// fit (see Tokenizer::max_token_bytes). Tokenizing what passes costs time linear in that bound.
absl::StatusOr<PreparedRequest> PrepareRequest(GenerationRequest request, const RequestLimits& limits,
                                               const Tokenizer* tokenizer);

// --- Output ------------------------------------------------------------------------------------------------

enum class FinishReason { kStop, kLength, kCancelled, kError };
// "stop", "length", "cancelled", "error" (metric labels, API enums).
absl::string_view FinishReasonName(FinishReason reason);

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;                      // tokens sent in events (a stop token id is not sent)
  double queue_seconds = 0.0;                         // submission to first admission (to the end when never admitted)
  std::optional<double> time_to_first_token_seconds;  // submission to the first token; unset when none
  double total_seconds = 0.0;                         // submission to the final event
};

struct GenerationFinish {
  FinishReason reason = FinishReason::kLength;
  // OK for kStop and kLength. Otherwise why: CANCELLED (the client cancelled), UNAVAILABLE (the engine
  // drained past its deadline or shut down), DEADLINE_EXCEEDED (the request's deadline or queue timeout
  // passed; reason kError), or the failure that ended it (reason kError).
  absl::Status status;
  Usage usage;
};

struct GenerationEvent {
  std::vector<int32_t> token_ids;  // new tokens, usually one per step
  // New text. The events' texts concatenate to the decoded output (Tokenizer::Decode of every token id
  // sent, continuing the prompt's text), except that a stop string and everything after it are never sent.
  // Never splits a UTF-8 character; text that might begin a stop string is held back until it cannot.
  // Empty when the model has no tokenizer.
  std::string text;
  std::vector<SampledToken> logprobs;      // one per token id when the request asked for logprobs
  std::optional<GenerationFinish> finish;  // set on the last event of a request, and only there
};

// Receives a request's events. Called on the engine thread, one event at a time and in order, the last
// with `finish` set; never again after that. Implementations must return quickly and never block (the gRPC
// layer queues the event for its stream): every other request waits meanwhile.
class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  virtual void OnEvent(GenerationEvent event) = 0;
};

}  // namespace nibble
