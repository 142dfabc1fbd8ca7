// The tool version (the CMake project version), recorded in manifests and exported as build info.
#pragma once

namespace nibble {

inline constexpr char kNibbleVersion[] = NIBBLE_VERSION;

}  // namespace nibble
