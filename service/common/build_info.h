// nibble_build_info{version,cuda}: a gauge always 1 whose labels say which build serves (design.md,
// "Metrics": both services export it).
#pragma once

#include "prometheus/registry.h"

namespace nibble::service {

void AddBuildInfo(prometheus::Registry& registry);

}  // namespace nibble::service
