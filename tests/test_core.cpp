// Core utilities: memory planning (include/cdmf/core/memory_plan.hpp: the need per rank, the
// rank count that would fit, the one-line refusal agreed on every rank, size parsing) and the
// progress lines of long work (include/cdmf/core/progress.hpp).
#include <gtest/gtest.h>

#include "cdmf/core/error.hpp"
#include "cdmf/core/memory_plan.hpp"
#include "cdmf/core/progress.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

TEST(MemoryPlan, NeedPerRankSplitsDistributedAndKeepsReplicated) {
  MemoryPlan plan("test");
  plan.add("block", 8e9);
  plan.add("core", 0.0, 1e6);
  plan.add("skewed", 4e9, 0.0, 1.5);
  EXPECT_DOUBLE_EQ(plan.per_rank_bytes(1), 8e9 + 1e6 + 6e9);
  EXPECT_DOUBLE_EQ(plan.per_rank_bytes(4), 2e9 + 1e6 + 1.5e9);
}

TEST(MemoryPlan, RanksThatFit) {
  MemoryPlan plan("test");
  plan.add("block", 10e9, 1e9);
  // 10e9 / P + 1e9 <= 3e9  <=>  P >= 5
  EXPECT_EQ(plan.ranks_that_fit(3e9), 5);
  EXPECT_EQ(plan.ranks_that_fit(1e9), 0);  // the replicated part alone fills it
  EXPECT_EQ(plan.ranks_that_fit(1e12), 1);
}

TEST(MemoryPlan, RefusesWhatDoesNotFitOnEveryRankWithOneLine) {
  MemoryBudget budget;
  budget.per_rank_bytes = 1e9;
  budget.source = "--memory-limit 1.0 GB";
  MemoryPlan plan("train --model deep (480189 x 17770)");
  plan.add("factor W2", 1.8e12);
  plan.add("panel", 0.0, 1e6);
  std::string message;
  try {
    plan.check(MPI_COMM_WORLD, budget);
  } catch (const Error& e) {
    message = e.what();
  }
  ASSERT_FALSE(message.empty());
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_NE(message.find("train --model deep (480189 x 17770) needs"), std::string::npos);
  EXPECT_NE(message.find("factor W2"), std::string::npos);
  EXPECT_NE(message.find("--memory-limit 1.0 GB"), std::string::npos);
  EXPECT_NE(message.find("would fit on 1802 ranks"), std::string::npos) << message;
  // What fits passes.
  MemoryPlan small("small");
  small.add("block", 1e6);
  EXPECT_NO_THROW(small.check(MPI_COMM_WORLD, budget));
}

TEST(MemoryPlan, BudgetIsPositiveAndTheSameEverywhere) {
  const MemoryBudget machine = memory_budget(MPI_COMM_WORLD);
  EXPECT_GT(machine.per_rank_bytes, 0.0);
  double low = machine.per_rank_bytes, high = machine.per_rank_bytes;
  MPI_Allreduce(&machine.per_rank_bytes, &low, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&machine.per_rank_bytes, &high, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  EXPECT_EQ(low, high);
  const MemoryBudget limited = memory_budget(MPI_COMM_WORLD, 1e6);
  EXPECT_DOUBLE_EQ(limited.per_rank_bytes, 1e6);
  EXPECT_NE(limited.source.find("--memory-limit"), std::string::npos);
}

TEST(MemoryPlan, ParsesSizes) {
  EXPECT_DOUBLE_EQ(parse_byte_size("8G", "--memory-limit"), 8e9);
  EXPECT_DOUBLE_EQ(parse_byte_size("1.5GB", "--memory-limit"), 1.5e9);
  EXPECT_DOUBLE_EQ(parse_byte_size("512m", "--memory-limit"), 512e6);
  EXPECT_DOUBLE_EQ(parse_byte_size("2e9", "--memory-limit"), 2e9);
  for (const char* bad : {"", "x", "-1G", "0", "inf", "nan", "3Q", "1GiB"})
    EXPECT_THROW(parse_byte_size(bad, "--memory-limit"), Error) << bad;
}

TEST(MemoryPlan, PeakMemoryIsMeasured) {
  const PeakMemory peak = peak_memory(MPI_COMM_WORLD);
  EXPECT_GT(peak.max_rank, 1e6);
  EXPECT_GE(peak.total, peak.max_rank);
}

TEST(ProgressLine, QuietForShortWorkThenFractionRateAndTimeLeft) {
  testing::internal::CaptureStdout();
  {
    ProgressLine short_work("short", 100.0, "items", true);  // ends within its quiet time
    short_work.update(100.0);
  }
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "");
  testing::internal::CaptureStdout();
  {
    ProgressLine silent("not rank 0", 100.0, "items", false, 0.0, 0.0);
    silent.update(50.0);
  }
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "");
  testing::internal::CaptureStdout();
  {
    ProgressLine reading("reading x.tsv", 4e6, "bytes", true, 0.0, 0.0);
    reading.update(1e6);
  }
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(out.rfind("reading x.tsv: 25% (1.0 MB of 4.0 MB), ", 0), 0u) << out;
  EXPECT_NE(out.find("/s, "), std::string::npos) << out;
  EXPECT_NE(out.find(" s left\nreading x.tsv: done, 1.0 MB in "), std::string::npos) << out;
}

TEST(ProgressLine, UnknownTotalGivesAmountTimeAndRate) {
  testing::internal::CaptureStdout();
  {
    ProgressLine lanczos("compression", 0.0, "sweeps", true, 0.0, 0.0);
    lanczos.update(12.0);
  }
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(out.rfind("compression: 12 sweeps in ", 0), 0u) << out;
  EXPECT_NE(out.find(" sweeps/s\ncompression: done, 12 sweeps in "), std::string::npos) << out;
  EXPECT_EQ(out.find('%'), std::string::npos) << out;
}

}  // namespace
}  // namespace cdmf
