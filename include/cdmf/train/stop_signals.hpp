#pragma once
/// Signals that ask a run to stop cleanly (DESIGN.md section 5). While a StopSignals object
/// lives, SIGTERM, SIGINT and SIGUSR1 only record that they arrived; the trainer polls that
/// at every iteration boundary, every rank agrees on it, writes a checkpoint and stops. Under
/// mpirun use SIGUSR1 (mpirun forwards it and waits; a SIGTERM to mpirun tears the job down
/// at once); under srun and Slurm's time limit, SIGTERM reaches every task directly.
///
/// SIGXFSZ is ignored meanwhile, so a file-size limit (ulimit -f) makes a write fail with an
/// error that is reported, instead of killing the rank.
///
/// The executable installs them before MPI_Init (which takes a while), so that a signal during
/// start-up is remembered rather than fatal; commands other than `train` restore the default
/// dispositions once the command line is parsed.
#include <csignal>
#include <string>

namespace cdmf {

class StopSignals {
 public:
  /// Installs the handlers; the previous dispositions come back at destruction. At most one
  /// StopSignals may exist at a time (Error otherwise).
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// The number of the last stop signal this process received while a StopSignals existed,
  /// or 0.
  static int received();

  /// "SIGTERM", "SIGINT", "SIGUSR1", or "signal N".
  static std::string name(int signal);

 private:
  struct sigaction previous_[4];
};

}  // namespace cdmf
