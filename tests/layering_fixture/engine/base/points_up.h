// A fixture for the layering check (tests/CMakeLists.txt): a base header that includes the runtime, an arrow
// pointing up. `layering_test.py tests/layering_fixture` must report it and fail.
#pragma once

#include "engine/runtime/backend.h"
