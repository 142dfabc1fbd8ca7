// One Generate stream through the gRPC callback API, timed on the client: when the first token arrived
// (TTFT), the gap before each later token (inter-token latency) and the whole call (end to end). Used by
// `nibble generate --server` (one call, waiting for it) and by nibble-load (many calls in flight).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "nibble/v1/inference.pb.h"
#include "service/client/connection.h"

namespace nibble::client {

struct GenerateOutcome {
  // OK when the stream ended with its final message and a finish reason other than ERROR. Otherwise the
  // call's gRPC status (its code, the message naming the server), Internal when the stream ended without a
  // final message, or Unknown carrying Final.error for a request the server finished with ERROR.
  absl::Status status;
  std::optional<v1::Final> final;                     // set when the final message arrived
  int64_t tokens = 0;                                 // token ids received
  std::optional<double> time_to_first_token_seconds;  // call start to the first chunk with tokens
  // One entry per token after the first: the gap between its chunk and the previous one with tokens,
  // divided by the tokens in its chunk (a chunk of k tokens after a gap g counts k gaps of g / k; tokens
  // that share the first chunk count 0).
  std::vector<double> inter_token_seconds;
  double e2e_seconds = 0;  // call start to the end of the call
};

// Called for each chunk, in order, on a gRPC thread; one at a time per call.
using ChunkCallback = std::function<void(const v1::TokenChunk& chunk)>;
// Called once when the call has ended, on a gRPC thread. It may start new calls.
using DoneCallback = std::function<void(GenerateOutcome outcome)>;

// Starts `request` on `connection` (which must outlive the call) and returns at once. `on_chunk` may be
// null. The call owns itself and is gone once `on_done` returns.
void StartGenerate(const Connection& connection, v1::GenerateRequest request, ChunkCallback on_chunk,
                   DoneCallback on_done);

// StartGenerate, waiting for the outcome.
GenerateOutcome RunGenerate(const Connection& connection, v1::GenerateRequest request, ChunkCallback on_chunk);

}  // namespace nibble::client
