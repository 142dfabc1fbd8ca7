// Short lowercase names of the API's enums, as tables and logs print them: FINISH_REASON_LENGTH -> "length",
// MODEL_STATE_AVAILABLE -> "available" (the same words as the metrics' finish_reason label).
#pragma once

#include <string>

#include "nibble/v1/inference.pb.h"

namespace nibble::client {

std::string FinishReasonLabel(v1::FinishReason reason);
std::string ModelStateLabel(v1::ModelState state);

}  // namespace nibble::client
