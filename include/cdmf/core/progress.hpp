#pragma once
/// Progress of long start-up work (reading, compression) on rank 0's output: nothing for work
/// that ends within a few seconds, then a line every so often with the fraction done, the rate
/// and the time left, and a closing line. Every rank does an even share of such work, so rank
/// 0's own share stands for the whole: no communication.
#include <string>

namespace cdmf {

class ProgressLine {
 public:
  /// `what` names the work ("reading train.tsv"); `total` is this rank's amount in `unit`
  /// (0 when it is not known in advance: the lines then give the amount done, time and rate)
  /// ("bytes" prints sizes as "12.3 MB"; any other unit as plain numbers); only a rank with
  /// `speaks` prints. Lines start once `quiet_seconds` have passed and come every
  /// `every_seconds`.
  ProgressLine(std::string what, double total, std::string unit, bool speaks,
               double quiet_seconds = 3.0, double every_seconds = 10.0);
  /// Prints the closing line ("reading train.tsv: done, 2.7 GB in 31.2 s") when any
  /// progress line was printed.
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  /// `done` of the total so far; cheap enough to call for every buffer or iteration.
  void update(double done);

 private:
  std::string amount(double value) const;

  std::string what_, unit_;
  double total_, quiet_, every_;
  bool speaks_;
  double started_, next_, done_ = 0.0;
  bool printed_ = false;
};

}  // namespace cdmf
