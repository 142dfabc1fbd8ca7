// SIGTERM and SIGINT for a service's main thread: BlockTerminationSignals before any thread starts (every thread
// inherits the mask, so no other thread is interrupted by them), then WaitForTerminationSignal where the main
// thread waits for the end. Process-wide by nature; call both from main() only.
#pragma once

namespace nibble::service {

void BlockTerminationSignals();
// Blocks until SIGTERM or SIGINT arrives; returns its name ("SIGTERM", "SIGINT") for the log.
const char* WaitForTerminationSignal();

}  // namespace nibble::service
