// Every blocking / scheduling constant of the core, each with its derivation. Tile shapes (MR x NR)
// live with their kernels (native/kernels/kernels_*.cc: register-file limits); the driver picks
// among them per problem (see choose_variant in conv_transpose.cc).
#pragma once

#include <cstdint>

namespace convt {
namespace blocking {

// Packed pixel panel (A) of one task: K x MR per tile, several tiles per task. Target half of a
// 1 MiB L2 (Zen 4/5, Ice Lake+ have 1-2 MiB per core) so the streaming weight panel and the output
// lines fit beside it.
constexpr int64_t kABlockBytes = 256 * 1024;

// Tasks per thread the scheduler aims for: tasks are claimed dynamically, so 4 per thread keeps the
// tail (one unfinished task while the others idle) under ~25 % of a task's share.
constexpr int kTasksPerThread = 4;

// Below this many FLOPs a call stays on the caller's thread: waking a sleeping worker costs
// 20-60 us on this class of machine (TOOLCHAIN.md T21), i.e. 2-6 MFLOP at ~100 GFLOP/s per core.
constexpr int64_t kParallelMinFlops = int64_t{3} << 20;

// Minimum FLOPs per task when splitting for parallelism: a task costs ~1-2 us of fixed overhead
// (packing setup, claim); 256 KFLOP is ~1.3 us at 200 GFLOP/s, so splitting finer only adds overhead.
constexpr int64_t kMinTaskFlops = int64_t{1} << 18;

// Weight packing runs in parallel only above this many weight elements (64 Ki elements ~ 256 KiB,
// ~20 us of copying: less than that is cheaper than a wake-up).
constexpr int64_t kParallelPackMinElements = int64_t{1} << 16;

// Cost of copying one element into a packed panel or padded block, in lane multiply-adds: a
// copy moves ~1 element per cycle where a 2-FMA AVX-512 core does 32 lane-FMAs; 16 splits the two ISAs.
constexpr double kCopyCost = 16.0;

// Tap-exact cost model (choose_variant) walks every tile only when a phase has at most this many
// pixels; larger phases waste at most a border fraction, so all taps are assumed valid.
constexpr int64_t kExactCostMaxPixels = 16384;

// Pixel ordering: batch-inner (pixel-major, images adjacent in the lanes) is considered when an
// image's phase has fewer pixels than this, where whole-image tiles would mix every tap.
constexpr int64_t kBatchInnerMaxPhasePixels = 64;

// Depthwise: output rows per task (a task is one (n, channel, row block)); 8 rows of a 128-wide
// output is ~4 K outputs x taps, a few microseconds.
constexpr int64_t kDepthwiseRowsPerTask = 8;

}  // namespace blocking
}  // namespace convt
