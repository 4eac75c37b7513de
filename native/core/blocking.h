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

// Bias-only outputs (stride > kernel) are filled in parallel only above this many output elements
// (256 Ki elements = 1 MiB of float32, ~30 us of stores: below that a wake-up costs as much).
constexpr int64_t kParallelFillMinElements = int64_t{1} << 18;

// Scatter path (GEMM over input pixels x (ky, co, kx) columns, then col2im per register tile): used when
// a group has at most 3 output channels, where the phase GEMM's tiles have 1-3 channels and need one
// pixel-vector load per FMA (measured ~40-55 % of peak in cache vs ~95 % for 12-column tiles), ...
constexpr int64_t kScatterMaxCoutPerGroup = 3;
// ... and enough input channels to amortise the scalar col2im additions (one per Z element, against
// Cin/G multiply-adds per Z element).
constexpr int64_t kScatterMinCinPerGroup = 16;
// Output elements of one group per scatter task (a block of whole output rows): 16 Ki outputs is 64 KiB
// of float32, L2-resident while the task adds into it.
constexpr int64_t kScatterBlockElements = int64_t{1} << 14;

// Single-pixel path: tiles with at least 8 images in the broadcast (fewer wastes the FMA slots on
// loads), and ~1.5 Ki columns per task (a task then writes NR x 6 KiB of output and reads Cin/G x 6 KiB
// of weights: a few microseconds, and enough tasks for 2 threads on a DCGAN first layer).
constexpr int64_t kSinglePixelMinNr = 8;
constexpr int64_t kSinglePixelColsPerTask = 1536;

// Depthwise: output rows per task (a task is one (n, channel, row block)); 8 rows of a 128-wide
// output is ~4 K outputs x taps, a few microseconds.
constexpr int64_t kDepthwiseRowsPerTask = 8;

}  // namespace blocking
}  // namespace convt
