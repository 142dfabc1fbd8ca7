#include "service/client/job_format.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "service/client/labels.h"
#include "service/client/watch_job.h"

namespace nibble::client {
namespace {

constexpr uint32_t kDefaultBits = 4;         // quantizer.proto: JobSpec.bits unset
constexpr uint32_t kDefaultGroupSize = 128;  // quantizer.proto: JobSpec.group_size unset

// "demo (awq w4 g128)"
std::string SpecLabel(const v1::JobSpec& spec) {
  return absl::StrFormat("%s (%s w%u g%u)", spec.name(), QuantMethodLabel(spec.method()),
                         spec.has_bits() ? spec.bits() : kDefaultBits,
                         spec.has_group_size() ? spec.group_size() : kDefaultGroupSize);
}

// Where a job is, as a list of parts: "searching", "block 4/5", "1.2 s/block", "ETA 1.2 s".
std::vector<std::string> ProgressParts(const v1::Job& job) {
  std::vector<std::string> parts;
  if (job.state() == v1::JOB_STATE_RUNNING) parts.push_back(JobPhaseLabel(job.phase()));
  if (job.blocks_total() > 0) {
    if (job.state() == v1::JOB_STATE_RUNNING && job.phase() == v1::JOB_PHASE_SEARCHING) {
      parts.push_back(
          absl::StrFormat("block %u/%u", std::min(job.blocks_done() + 1, job.blocks_total()), job.blocks_total()));
    } else {
      parts.push_back(absl::StrFormat("%u/%u blocks", job.blocks_done(), job.blocks_total()));
    }
  }
  if (job.seconds_per_block() > 0) parts.push_back(absl::StrCat(FormatDuration(job.seconds_per_block()), "/block"));
  if (job.state() == v1::JOB_STATE_RUNNING && job.eta_seconds() > 0) {
    parts.push_back(absl::StrCat("ETA ", FormatDuration(job.eta_seconds())));
  }
  return parts;
}

// The last block done, its output loss summed over the scale groups against plain RTN's:
// "block 3 loss 1.2e-04 vs RTN 3.4e-04 (-64.7%)"; "block 3 in 0.84 s" without scale groups (RTN); empty
// before the first block.
std::string LastBlock(const v1::Job& job) {
  if (job.blocks().empty()) return "";
  const v1::BlockReport& block = *job.blocks().rbegin();
  if (block.scale_groups().empty())
    return absl::StrCat("block ", block.index(), " in ", FormatDuration(block.seconds()));
  double loss = 0, loss_rtn = 0;
  for (const v1::ScaleGroupReport& group : block.scale_groups()) {
    loss += group.loss();
    loss_rtn += group.loss_rtn();
  }
  std::string line = absl::StrFormat("block %u loss %.2e vs RTN %.2e", block.index(), loss, loss_rtn);
  if (loss_rtn > 0) absl::StrAppendFormat(&line, " (%+.1f%%)", 100.0 * (loss - loss_rtn) / loss_rtn);
  return line;
}

// A finished job's outcome: "published PATH (version N), perplexity 4.09 -> 4.39", or the error.
std::string Outcome(const v1::Job& job) {
  switch (job.state()) {
    case v1::JOB_STATE_SUCCEEDED: {
      std::string outcome =
          absl::StrCat("published ", job.published_path(), " (version ", job.published_version(), ")");
      if (job.has_perplexity_source() && job.has_perplexity_quantized()) {
        absl::StrAppendFormat(&outcome, ", perplexity %.4f -> %.4f", job.perplexity_source(),
                              job.perplexity_quantized());
      }
      return outcome;
    }
    case v1::JOB_STATE_FAILED:
    case v1::JOB_STATE_CANCELLED:
      return job.error();
    default:
      return "";
  }
}

std::string ProgressBar(const v1::Job& job, int width) {
  const double share = job.state() == v1::JOB_STATE_SUCCEEDED ? 1.0
                       : job.blocks_total() > 0 ? static_cast<double>(job.blocks_done()) / job.blocks_total()
                                                : 0.0;
  const int filled = std::clamp(static_cast<int>(std::floor(share * width)), 0, width);
  return absl::StrCat("[", std::string(filled, '#'), std::string(width - filled, '-'), "]");
}

}  // namespace

std::string FormatDuration(double seconds) {
  if (!(seconds >= 0)) return "-";
  if (seconds < 10) return absl::StrFormat("%.2g s", seconds);
  if (seconds < 60) return absl::StrFormat("%.0f s", seconds);
  const int64_t whole = static_cast<int64_t>(std::llround(seconds));
  if (whole < 3600) return absl::StrFormat("%dm%02ds", whole / 60, whole % 60);
  return absl::StrFormat("%dh%02dm", whole / 3600, whole / 60 % 60);
}

std::string JobSummary(const v1::Job& job) {
  std::vector<std::string> parts = {JobStateLabel(job.state())};
  for (std::string& part : ProgressParts(job)) parts.push_back(std::move(part));
  if (job.resumes() > 0) {
    parts.push_back(absl::StrFormat("resumed %ux, last from block %u", job.resumes(), job.resumed_from_block()));
  }
  if (job.peak_gpu_memory_bytes() > 0) {
    parts.push_back(absl::StrFormat("peak GPU memory %.2f GiB", job.peak_gpu_memory_bytes() / 1073741824.0));
  }
  std::string line = absl::StrCat(job.id(), " ", SpecLabel(job.spec()), ": ", absl::StrJoin(parts, ", "));
  if (const std::string block = LastBlock(job); !block.empty() && !IsTerminalJobState(job.state())) {
    absl::StrAppend(&line, "; ", block);
  }
  if (const std::string outcome = Outcome(job); !outcome.empty()) absl::StrAppend(&line, "; ", outcome);
  return line;
}

std::string JobTable(const google::protobuf::RepeatedPtrField<v1::Job>& jobs) {
  constexpr absl::string_view kRow = "%-20s %-24s %-6s %-9s %-12s %7s %9s %8s %-19s %s\n";
  std::string table = absl::StrFormat(kRow, "ID", "NAME", "METHOD", "STATE", "PHASE", "BLOCKS", "S/BLOCK", "ETA",
                                      "CREATED (UTC)", "PUBLISHED / ERROR");
  for (const v1::Job& job : jobs) {
    const std::string blocks =
        job.blocks_total() > 0 ? absl::StrFormat("%u/%u", job.blocks_done(), job.blocks_total()) : "-";
    const std::string per_block = job.seconds_per_block() > 0 ? FormatDuration(job.seconds_per_block()) : "-";
    const std::string eta =
        job.state() == v1::JOB_STATE_RUNNING && job.eta_seconds() > 0 ? FormatDuration(job.eta_seconds()) : "-";
    const std::string created =
        absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(job.created_unix_ms()), absl::UTCTimeZone());
    absl::StrAppendFormat(&table, kRow, job.id(), job.spec().name(), QuantMethodLabel(job.spec().method()),
                          JobStateLabel(job.state()), JobPhaseLabel(job.phase()), blocks, per_block, eta, created,
                          job.state() == v1::JOB_STATE_SUCCEEDED ? job.published_path() : job.error());
  }
  return table;
}

std::string ProgressLine(const v1::Job& job, int bar_width) {
  std::vector<std::string> parts;
  if (bar_width > 0) parts.push_back(ProgressBar(job, bar_width));
  if (job.state() != v1::JOB_STATE_RUNNING) parts.push_back(JobStateLabel(job.state()));
  for (std::string& part : ProgressParts(job)) parts.push_back(std::move(part));
  if (const std::string block = LastBlock(job); !block.empty()) parts.push_back(block);
  return absl::StrJoin(parts, "  ");
}

void JobProgress::Update(const v1::Job& job) {
  if (redraw_) {
    std::string line = ProgressLine(job, /*bar_width=*/24);
    if (columns_ > 1 && line.size() >= static_cast<size_t>(columns_)) line.resize(columns_ - 1);
    out_ << "\r" << line << "\x1b[K" << std::flush;
    shown_ = true;
    return;
  }
  if (shown_ && job.state() == state_ && job.phase() == phase_ && job.blocks_done() == blocks_done_) return;
  out_ << ProgressLine(job, /*bar_width=*/0) << "\n" << std::flush;
  shown_ = true;
  state_ = job.state();
  phase_ = job.phase();
  blocks_done_ = job.blocks_done();
}

void JobProgress::Finish() {
  if (redraw_ && shown_) out_ << "\n" << std::flush;
  shown_ = false;
}

}  // namespace nibble::client
