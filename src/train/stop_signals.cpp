#include "cdmf/train/stop_signals.hpp"

#include <atomic>

#include "cdmf/core/error.hpp"

namespace cdmf {

namespace {
// Written by the handler, read by the trainer's poll: a lock-free atomic is async-signal-safe.
std::atomic<int> g_received{0};
std::atomic<bool> g_installed{false};
constexpr int kSignals[] = {SIGTERM, SIGINT, SIGUSR1, SIGXFSZ};

extern "C" void record_signal(int signal) { g_received.store(signal); }
}  // namespace

StopSignals::StopSignals() {
  fail_if(g_installed.exchange(true), "stop signal handlers are already installed");
  g_received.store(0);
  for (int k = 0; k < 4; ++k) {
    struct sigaction action {};
    action.sa_handler = kSignals[k] == SIGXFSZ ? SIG_IGN : record_signal;
    sigemptyset(&action.sa_mask);
    // SA_RESTART: a signal arriving in a read or write must not make it fail with EINTR.
    action.sa_flags = SA_RESTART;
    sigaction(kSignals[k], &action, &previous_[k]);
  }
}

StopSignals::~StopSignals() {
  for (int k = 0; k < 4; ++k) sigaction(kSignals[k], &previous_[k], nullptr);
  g_installed.store(false);
}

int StopSignals::received() { return g_received.load(); }

std::string StopSignals::name(int signal) {
  switch (signal) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGUSR1:
      return "SIGUSR1";
    default:
      return "signal " + std::to_string(signal);
  }
}

}  // namespace cdmf
