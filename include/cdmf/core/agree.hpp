#pragma once
/// Collective error agreement: a failure seen by one rank becomes the same Error on every
/// rank, so no rank waits forever in a collective that a failed rank never reaches.
#include <mpi.h>

#include <exception>
#include <string>

#include "cdmf/core/error.hpp"

namespace cdmf {

/// Collective over `comm`: if any rank passes a non-empty message, every rank throws Error
/// with the message of the lowest such rank; otherwise returns.
void agree_on_error(MPI_Comm comm, const std::string& local_message);

/// Runs `work` on every rank of `comm`, then agrees on failure: an Error (or any
/// std::exception) on one rank is rethrown on all. `work` must not itself call collectives
/// on `comm` after a point where it may throw on only some ranks.
template <typename Work>
void run_agreed(MPI_Comm comm, Work&& work) {
  std::string message;
  try {
    work();
  } catch (const std::exception& e) {
    message = e.what();
    if (message.empty()) message = "unknown error";
  }
  agree_on_error(comm, message);
}

}  // namespace cdmf
