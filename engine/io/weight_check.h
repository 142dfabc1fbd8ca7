// Checks on a HostModel's values that loading does not make (loading checks names, dtypes and shapes).
// Pure functions; they read every float value once, in chunks (no copy of a whole tensor).
#pragma once

#include "absl/status/status.h"
#include "engine/io/host_model.h"

namespace nibble {

// OK when every float tensor (embedding, norms, dense weights, biases, AWQ scales, lm_head) holds only finite
// values; otherwise InvalidArgument naming the tensor (its Hugging Face name, as model_layout.h spells it), the element
// and the value.
absl::Status CheckFiniteWeights(const HostModel& model);

}  // namespace nibble
