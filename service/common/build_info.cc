#include "service/common/build_info.h"

#include "engine/base/version.h"
#include "prometheus/gauge.h"

namespace nibble::service {

void AddBuildInfo(prometheus::Registry& registry) {
#ifdef NIBBLE_HAVE_CUDA
  constexpr char kCuda[] = "on";
#else
  constexpr char kCuda[] = "off";
#endif
  prometheus::BuildGauge()
      .Name("nibble_build_info")
      .Help("Always 1; the labels say which build this is")
      .Register(registry)
      .Add({{"version", kNibbleVersion}, {"cuda", kCuda}})
      .Set(1);
}

}  // namespace nibble::service
