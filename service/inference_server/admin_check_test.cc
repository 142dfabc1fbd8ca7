// Which gRPC peer strings count as loopback for --allow-loopback-admin (the admin checks themselves run over real
// sockets in tests/e2e/security_e2e_test.cc).
#include "service/inference_server/admin_check.h"

#include <gtest/gtest.h>

namespace nibble::server {
namespace {

TEST(IsLoopbackPeerTest, LoopbackAddressesAndUnixSockets) {
  for (const char* peer : {"ipv4:127.0.0.1:40000", "ipv4:127.1.2.3:1", "ipv6:[::1]:40000",
                           "ipv6:[::ffff:127.0.0.1]:40000", "unix:/run/nibble.sock", "unix-abstract:nibble"}) {
    EXPECT_TRUE(IsLoopbackPeer(peer)) << peer;
  }
}

TEST(IsLoopbackPeerTest, OtherAddressesAreNot) {
  for (const char* peer :
       {"ipv4:10.0.0.7:40000", "ipv4:192.0.2.2:1", "ipv4:1.127.0.0:1", "ipv6:[::2]:40000", "ipv6:[fd00::1]:40000",
        "ipv6:[::ffff:10.0.0.1]:1", "ipv6:[::1%eth0]:1", "", "127.0.0.1:1"}) {
    EXPECT_FALSE(IsLoopbackPeer(peer)) << peer;
  }
}

}  // namespace
}  // namespace nibble::server
