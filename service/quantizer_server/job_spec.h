// A submitted v1::JobSpec checked and turned into the quantizer's QuantizeJobSpec (quantizer/job.h).
//
// The checks run cheapest first and all of them at submission, so a bad spec is refused before it is queued
// (and again when the worker starts the job, since files may have gone meanwhile): ranges and enums, the model
// name, then the paths, each of which must resolve (symbolic links followed) inside one of the source roots
// (PERMISSION_DENIED naming the field and path otherwise, before anything is said about the file itself), then
// exist (NOT_FOUND), then the source's config.json, which must describe an unquantized model whose Linears the
// group size fits and whose context holds seqlen. Errors name the field ("spec.group_size: ...") and quote
// client text only as a short escaped prefix. Reads files only; any thread.
#pragma once

#include <filesystem>
#include <vector>

#include "absl/status/statusor.h"
#include "nibble/v1/quantizer.pb.h"
#include "quantizer/job.h"

namespace nibble::quantizer_server {

struct JobSpecContext {
  std::vector<std::filesystem::path> source_roots;  // canonical directories jobs may read from
  std::filesystem::path store_root;                 // where jobs publish
  std::filesystem::path checkpoints_root;           // <state-dir>/jobs: each job checkpoints in <root>/<id>
};

// The spec as the quantizer runs it for job `job_id` (checkpoint directory and manifest "job" set).
absl::StatusOr<QuantizeJobSpec> ResolveJobSpec(const v1::JobSpec& spec, const JobSpecContext& context,
                                               const std::string& job_id);

}  // namespace nibble::quantizer_server
