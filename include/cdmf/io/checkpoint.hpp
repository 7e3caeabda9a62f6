#pragma once
/// Checkpoints (DESIGN.md section 3): a factor file (factor_file.hpp, the same code path for
/// /factors) plus everything a restart needs, written collectively with parallel HDF5:
///
///   / attrs                  the factor file's (format, format_version, cdmf_version, model,
///                            rows, cols, depth, width, iteration, created, config) and
///                            data_fingerprint, train_entries, ranks, grid
///   /factors/W1..WK, /ids    as in a factor file
///   /optimizer               attrs kind, step_count, lr, momentum, beta1, beta2, adam_epsilon;
///   /optimizer/first_moment/W1..WK    velocities (momentum, nesterov) or Adam's first moments
///   /optimizer/second_moment/W1..WK   Adam's second moments
///   /permutation/rows, /cols int64: original index i is stored at permuted index rows[i];
///                            attrs seed, permuted
///   /rng                     attrs generator, seed: the generator is counter-based (draws are
///                            functions of (seed, stream, index)), so the seed is its state
///   /trainer                 attrs iteration, elapsed_seconds, best_test_loss, stale_logs,
///                            best_iteration (-1: none)
///   /trainer/best/W1..WK     the factors of best_iteration (when kept: --validation)
///   /biases                  as in a factor file (when the model has biases)
///   /metrics/<column>        the logged history before `iteration`, one 1-D dataset per
///                            column (iteration, seconds, train_loss, ...; attr columns)
///   /diagnostics/initial/W1..WK   W_l(0) for --diagnostics (only when it is on)
///
/// Every dataset carries a checksum that readers verify, and the file format has checksummed
/// metadata, so a damaged file is an error, never a silently different run. Files are written
/// under a temporary name and renamed once every rank agrees the write succeeded.
#include <mpi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/data/observations.hpp"
#include "cdmf/data/readers.hpp"
#include "cdmf/io/factor_file.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/optim/optimizer.hpp"
#include "cdmf/train/trainer.hpp"

namespace cdmf {

/// An order-independent fingerprint of a training set: the number of entries and the sum
/// (mod 2^64) of a hash of each (original row, original column, value). The same whatever
/// the order of the file or the number of ranks that read it.
struct DataFingerprint {
  std::int64_t entries = 0;
  std::uint64_t hash = 0;
  /// 16 hex digits of the hash.
  std::string text() const;
  bool operator==(const DataFingerprint& other) const {
    return entries == other.entries && hash == other.hash;
  }
};

/// Collective: the fingerprint of the entries every rank parsed.
DataFingerprint fingerprint_entries(MPI_Comm comm, const EntryList& entries);

/// What a checkpoint records besides the chain, the optimizer and the trainer state.
struct CheckpointMeta {
  std::string config_json = "{}";
  DataFingerprint data;
  const IdMap* row_ids = nullptr;
  const IdMap* col_ids = nullptr;
  std::vector<std::string> extra_metric_columns;                 // names of MetricsRow::extra
  const std::vector<DistMatrix>* diagnostics_initial = nullptr;  // W_l(0) for --diagnostics
  const Biases* biases = nullptr;  // the model's biases (/biases, as in a factor file)
  std::optional<std::pair<double, double>> clip;  // prediction range, as in a factor file
};

/// Collective: writes a checkpoint of the state at boundary `state.iteration` to `path`
/// (atomically: temporary name, agreement, rename). A failure leaves `path` and every other
/// file untouched and throws the same Error on every rank.
void write_checkpoint(const ProcessGrid& grid, const IndexLayout& layout, const std::string& path,
                      const Chain& chain, const Optimizer& optimizer, const TrainerState& state,
                      const CheckpointMeta& meta);

/// What read_checkpoint_info finds in a file: the factor file part, and, for a checkpoint,
/// the metadata of the restart state.
struct CheckpointInfo {
  FactorFileInfo factors;
  /// A full checkpoint (optimizer, trainer, permutation and metrics groups); false for a plain
  /// factor file (an --init or predict input, not a restart point).
  bool restartable = false;
  std::string optimizer;  // kind
  std::int64_t step_count = 0;
  bool has_first_moments = false, has_second_moments = false;
  double elapsed_seconds = 0.0;
  DataFingerprint data;
  std::uint64_t permutation_seed = 0;
  bool permuted = true;
  std::vector<std::string> metric_columns;  // every column, in file order
  std::int64_t metric_rows = 0;
  bool has_diagnostics = false;
  int ranks = 0;     // that wrote it
  std::string grid;  // that wrote it
};

/// Collective: opens and validates `path` (the factor file checks of read_factor_file_info,
/// then, when any checkpoint group is present, that all are, with the shapes the factors
/// imply). Errors name the file and the problem.
CheckpointInfo read_checkpoint_info(MPI_Comm comm, const std::string& path);

/// The restart state read back from a checkpoint (distributed like a fresh run's).
struct LoadedCheckpoint {
  Chain chain;
  std::int64_t step_count = 0;
  std::vector<DistMatrix> first_moments, second_moments;
  TrainerState state;
  std::optional<std::vector<DistMatrix>> diagnostics_initial;
  std::vector<std::int64_t> row_permutation, col_permutation;  // as stored
  std::optional<Biases> biases;
  std::vector<std::string> extra_metric_columns;
};

/// Collective: reads every dataset of the checkpoint `info` describes onto `grid` with block
/// `block` (factors and moments redistributed from the file's original order into `layout`'s
/// permuted spaces, so any grid can read any checkpoint) and verifies its checksum.
/// `info.restartable` must hold.
LoadedCheckpoint load_checkpoint(const ProcessGrid& grid, const IndexLayout& layout,
                                 const CheckpointInfo& info, int block);

/// Moves the optimizer state of `loaded` into `optimizer` (built for the same chain, kind and
/// layout). Throws when the checkpoint holds another optimizer's state.
void restore_optimizer(LoadedCheckpoint& loaded, Optimizer& optimizer, const std::string& path);

/// The checkpoints of a run in one directory, named DIR/checkpoint-<iteration>.h5 (10 digits,
/// so names sort by iteration). Keeps the newest `keep`.
class CheckpointDirectory {
 public:
  /// Collective: creates `directory` when missing, checks that a file can be created in it
  /// (so an unwritable directory fails at start, not after hours of training), and removes
  /// the temporaries of writers that were killed (never a complete checkpoint).
  CheckpointDirectory(MPI_Comm comm, std::string directory, int keep);

  const std::string& directory() const { return directory_; }
  int keep() const { return keep_; }
  /// DIR/checkpoint-0000001200.h5 for iteration 1200.
  std::string file_for(std::int64_t iteration) const;
  /// Names of the stale temporaries removed at construction (for a note to the user).
  const std::vector<std::string>& removed_temporaries() const { return removed_; }

  /// Collective (rank 0 removes): all but the newest `keep` checkpoints. Returns a message
  /// for every file that could not be removed (nothing is damaged by that).
  std::vector<std::string> prune(MPI_Comm comm) const;

 private:
  std::string directory_;
  int keep_;
  std::vector<std::string> removed_;
};

/// Collective (rank 0 looks): the checkpoint files of `directory`, newest first; empty when
/// the directory does not exist.
std::vector<std::string> list_checkpoints(MPI_Comm comm, const std::string& directory);

}  // namespace cdmf
