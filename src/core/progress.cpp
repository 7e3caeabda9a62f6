#include "cdmf/core/progress.hpp"

#include <chrono>
#include <cstdio>

#include <fmt/core.h>

#include "cdmf/core/memory_plan.hpp"

namespace cdmf {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ProgressLine::ProgressLine(std::string what, double total, std::string unit, bool speaks,
                           double quiet_seconds, double every_seconds)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      total_(total),
      quiet_(quiet_seconds),
      every_(every_seconds),
      speaks_(speaks),
      started_(now_seconds()),
      next_(started_ + quiet_seconds) {}

ProgressLine::~ProgressLine() {
  if (!printed_) return;
  fmt::print("{}: done, {} in {:.1f} s\n", what_, amount(done_), now_seconds() - started_);
  std::fflush(stdout);
}

std::string ProgressLine::amount(double value) const {
  return unit_ == "bytes" ? byte_text(value) : fmt::format("{:.0f} {}", value, unit_);
}

void ProgressLine::update(double done) {
  done_ = done;
  if (!speaks_) return;
  const double now = now_seconds();
  if (now < next_) return;
  next_ = now + every_;
  const double elapsed = now - started_;
  const double rate = done / elapsed;
  const std::string left =
      rate > 0.0 && total_ > done ? fmt::format(", {:.0f} s left", (total_ - done) / rate) : "";
  const std::string per_second =
      unit_ == "bytes" ? byte_text(rate) + "/s" : fmt::format("{:.3g} {}/s", rate, unit_);
  if (total_ > 0.0)
    fmt::print("{}: {:.0f}% ({} of {}), {}{}\n", what_, 100.0 * done / total_, amount(done),
               amount(total_), per_second, left);
  else  // an amount not known in advance (an iterative method's work)
    fmt::print("{}: {} in {:.1f} s, {}\n", what_, amount(done), elapsed, per_second);
  std::fflush(stdout);
  printed_ = true;
}

}  // namespace cdmf
