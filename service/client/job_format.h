// How the command line shows a quantization job (nibble.v1.Job): a one-line summary, a table of jobs, and the
// progress of a watched job. What a job does not report yet (blocks_total 0 before the source is loaded, no
// block done, no ETA) is left out rather than printed as zero.
//
// The functions are pure and thread-safe. A JobProgress writes to a stream it does not own (which must outlive
// it) and is used from one thread.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "nibble/v1/quantizer.pb.h"

namespace nibble::client {

// A duration for people: "0.84 s", "42 s", "3m05s", "2h07m".
std::string FormatDuration(double seconds);

// One line: the id, the spec, the state and what follows from it, e.g.
//   job-00000000000000aa demo (awq w4 g128): running, searching block 4/5, 1.2 s/block, ETA 1.2 s;
//   block 3 loss 1.2e-04 vs RTN 3.4e-04 (-64.7%)
// and for a finished job the published path (and perplexity before -> after) or the error.
std::string JobSummary(const v1::Job& job);

// A header line and one row per job (id, name, method, state, phase, blocks, s/block, ETA, created in UTC,
// and the published path or the error), each line ending in '\n'.
std::string JobTable(const google::protobuf::RepeatedPtrField<v1::Job>& jobs);

// The progress of `job` on one line without '\n': a bar of `bar_width` cells ('#' per share of the blocks
// done; none when 0), the state or phase, "block 3/5", s/block and the ETA, then the last block's losses.
std::string ProgressLine(const v1::Job& job, int bar_width);

// Shows the messages of a WatchJob stream. With `redraw` (stdout is a terminal `columns` wide) each Update
// redraws one line in place ('\r', the line cut to columns - 1 so that it never wraps, erase to its end);
// otherwise it writes a whole line only when the state, the phase or the blocks done changed since the last
// one, so that a log gets one line per block.
class JobProgress {
 public:
  JobProgress(std::ostream& out, bool redraw, int columns = 80) : out_(out), redraw_(redraw), columns_(columns) {}

  void Update(const v1::Job& job);
  // Ends a redrawn line with '\n' (nothing otherwise, and nothing when no Update came).
  void Finish();

 private:
  std::ostream& out_;
  const bool redraw_;
  const int columns_;
  bool shown_ = false;
  v1::JobState state_ = v1::JOB_STATE_UNSPECIFIED;
  v1::JobPhase phase_ = v1::JOB_PHASE_UNSPECIFIED;
  uint32_t blocks_done_ = 0;
};

}  // namespace nibble::client
