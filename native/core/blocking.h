// Every blocking / scheduling constant of the core, each with its derivation. Tile shapes (MR x NR)
// live with their kernels (native/kernels/kernels_*.cc: register-file limits); the driver picks
// among them per problem (see choose_variant in conv_transpose.cc).
#pragma once

#include <cstdint>

namespace convt {
namespace blocking {

// Packed pixel panel (A) of one task: K x MR per tile, several tiles per task. Target a quarter to a
// half of a 1-2 MiB L2 (Zen 4/5, Ice Lake+) so the weight panels and the output lines fit beside it.
constexpr int64_t kABlockBytes = 256 * 1024;

// Weight sub-panel of one reduction block (kc steps x NR channels), which serves every pixel tile of a task: 64 KiB,
// more than a 48 KiB L1d, so it is read from L2, but a reduction then has fewer blocks, and the tiles' pixel rows
// (an input block or a batch-innermost input copy, often beyond L2) are streamed fewer times. Measured on Zen 5, 2
// threads, separate processes run alternately, 3 rounds, 24 KiB -> 64 KiB: DCGAN 512->256 on 4x4, 16 images,
// 3.11-3.72 -> 2.90-3.16 ms; 256->128 on 8x8 3.75-4.19 -> 3.24-3.55; HiFi-GAN 512->256 13.4-14.1 -> 12.5-13.8; U-Net
// 1024->512 10.9-11.4 -> 10.1-11.1. Calls alternating in one process (convt_core_test --ab) agreed (1 thread too:
// U-Net 21.1 -> 20.0 ms) and found the other shapes level, and 128 KiB level with 64.
constexpr int64_t kBPanelBytes = 64 * 1024;

// Tasks per thread the scheduler aims for: tasks are claimed dynamically, so 4 per thread keeps the
// tail (one unfinished task while the others idle) under ~25 % of a task's share.
constexpr int kTasksPerThread = 4;

// At most this many FLOPs per task when splitting for parallelism (~0.3 ms at 110 GFLOP/s): a big call's
// tail (the last task of the slower thread) then stays a few % of it even when one thread is slowed
// down for a while; per task, re-copied input blocks / pixel panels cost ~1-3 % of the work.
constexpr int64_t kBalanceTaskFlops = int64_t{1} << 25;

// Below this many FLOPs a call stays on the caller's thread: waking a sleeping worker costs
// 20-60 us on this class of machine (TOOLCHAIN.md T21), i.e. 2-6 MFLOP at ~100 GFLOP/s per core.
constexpr int64_t kParallelMinFlops = int64_t{3} << 20;

// Minimum FLOPs per task when splitting for parallelism: a task has a few microseconds of fixed costs (claim,
// tile setup, its input block or panels, partial output lines), so a task should be ~10 us of arithmetic, 2 MFLOP
// at 200 GFLOP/s (measured: 16->16 on 32x32, k3 s2, 2 threads, as 4 tasks 41-55 us, as 2 tasks 37-38 us).
constexpr int64_t kMinTaskFlops = int64_t{1} << 21;

// Weight packing runs in parallel only above this many weight elements (64 Ki elements ~ 256 KiB,
// ~20 us of copying: less than that is cheaper than a wake-up).
constexpr int64_t kParallelPackMinElements = int64_t{1} << 16;

// Weights of at most this many elements are packed once per thread and kept while calls repeat with the same weight
// values (small_packed_weights): checking them (a memcmp) costs a fraction of packing them, and a 2-thread call no
// longer packs on one thread while the other waits. 64 Ki elements (256 KiB of float32) covers 3x3 layers of 64
// channels. Measured, 2 threads, reused output, separate processes run alternately, 3 rounds, 16 Ki -> 64 Ki
// elements: dilated 64->64 on 56x56 0.76-0.86 -> 0.74-0.81 ms; stride-1 64->64 on 112x112 2.73-2.79 -> 2.69-2.78;
// calls alternating in one process: -6.8 % and -2 %. 256 Ki (DCGAN 128->64's 512 KiB too) was not clearly better.
constexpr int64_t kPackCacheMaxElements = int64_t{64} << 10;

// Weight packing reads each input channel's NR x kH x kW weights, Cout/G x kH x kW elements after the
// previous channel's (too far apart for the hardware prefetcher): prefetch 4 channels ahead, a few
// hundred nanoseconds of packing (measured ~10 % faster packing of an 8 MiB weight tensor).
constexpr int64_t kPackPrefetch = 4;

// Cost of copying one element into a packed panel or padded block, in lane multiply-adds: a copy moves ~1 element
// per cycle where an AVX-512 core does 16-32 lane-FMAs (1-2 FMA pipes). 32 for the two-pipe Zen 5 this is tuned on
// (against 16: U-Net 1024->512 at 2 threads splits its channel tiles less, so re-copies its input block less often,
// min of 3: 11.5 -> 11.0 ms; 512->256 on 56x56 9.8 -> 9.5 ms; other shapes level).
constexpr double kCopyCost = 32.0;

// Cost of one call that copies or zero-fills a row of a direct-mode input block, in lane multiply-adds: ~13 cycles
// of a core doing 32 lane-FMAs per cycle. Measured on Zen 5, 1 thread, calls alternating, as many lanes either way:
// DCGAN 128->64 on 16x16, 16 images, 18 block rows per channel copied in 3 calls each or each channel in 1 call,
// 7.0 -> 6.6 ms (~4 ns a call); 16->16 on 32x32 42 -> 40 us.
constexpr double kCopyCallCost = 400.0;

// Tap-exact cost model (choose_variant) walks every tile only when a phase has at most this many
// pixels; larger phases waste at most a border fraction, so all taps are assumed valid.
constexpr int64_t kExactCostMaxPixels = 16384;

// Pixel ordering: batch-inner (pixel-major, images adjacent in the lanes) is considered when an
// image's phase has at most this many pixels (one 64-lane tile), where whole-image tiles would mix
// every tap (measured: 8x8 phases of 16 images, 4x4 taps: batch-inner 9 % faster); for larger phases
// too when N is a multiple of the tile's lanes (tiles then read the input copy directly, exact taps,
// no padding lanes) and the output fits the staging buffer below (measured: DCGAN 128->64 on 16x16,
// 16 images, 1 thread: 11.4-11.8 ms direct, 10.2-10.7 batch-inner).
constexpr int64_t kBatchInnerMaxPhasePixels = 64;
// Batch-inner tiles hold one pixel of consecutive images per run: written straight to the output, each lane
// is a 4-byte store to another image (a cache line per lane). Outputs up to this size are staged instead,
// images innermost (whole-line stores), then transposed in one pass: A3 of the bench went from 12.4 to
// ~11.2 ms at 1 thread. The staging buffer is per-thread scratch, kept between calls, so it is capped.
constexpr int64_t kBatchInnerStageMaxBytes = int64_t{8} << 20;

// Outputs of at least this size are written with streaming stores where a path has them (the stride-2 row
// interleave of the depthwise and direct paths): far beyond the L2s and half of a 32 MiB L3, they would not stay
// in cache for the next layer anyway, and a streaming store skips reading each line before writing it (measured,
// depthwise 256 channels 64x64 -> 128x128, a 16 MiB result, 2 threads, in Node: fresh result 1.54-1.84 ->
// 1.10-1.30 ms, reused out 1.10 -> 0.96 ms).
constexpr int64_t kStreamOutputMinBytes = int64_t{16} << 20;

// Bias-only outputs (stride > kernel) are filled in parallel only above this many output elements
// (256 Ki elements = 1 MiB of float32, ~30 us of stores: below that a wake-up costs as much).
constexpr int64_t kParallelFillMinElements = int64_t{1} << 18;

// Scatter path (GEMM over input pixels x (ky, co, kx) columns, then col2im per register tile): used when
// a group has at most 3 output channels, where the phase GEMM's tiles have 1-3 channels and need one
// pixel-vector load per FMA (measured ~40-55 % of peak in cache vs ~95 % for 12-column tiles), ...
constexpr int64_t kScatterMaxCoutPerGroup = 3;
// ... and enough input channels to amortise the col2im additions (one per Z element, against Cin/G
// multiply-adds per Z element).
constexpr int64_t kScatterMinCinPerGroup = 16;
// Output elements of one group per scatter task (a block of whole output rows): 16 Ki outputs is 64 KiB
// of float32, L2-resident while the task adds into it.
constexpr int64_t kScatterBlockElements = int64_t{1} << 14;

// Single-pixel path: tiles with at least 8 images in the broadcast (fewer wastes the FMA slots on
// loads), and ~1.5 Ki columns per task (a task then writes NR x 6 KiB of output and reads Cin/G x 6 KiB
// of weights: a few microseconds, and enough tasks for 2 threads on a DCGAN first layer).
constexpr int64_t kSinglePixelMinNr = 8;
constexpr int64_t kSinglePixelColsPerTask = 1536;

// Depthwise: outputs per task (a task is one (n, channel, block of whole output rows)): 16 Ki outputs is a
// few microseconds, and a 64 KiB float32 block that stays in L2 while it is written.
constexpr int64_t kDepthwiseOutputsPerTask = int64_t{1} << 14;
// Depthwise phase rows are computed over whole multiples of this many pixels (the widest vector, 16
// float32 lanes of AVX-512; the padded input rows have room), so the plane kernel never runs a scalar
// epilogue.
constexpr int64_t kDwLanes = 16;

}  // namespace blocking
}  // namespace convt
