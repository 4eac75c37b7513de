// Large allocations for results and per-thread scratch.
//
// Fresh memory costs page faults: on this project's Firecracker VMs, 3 ms per MiB with 4 KiB pages, often more
// than the arithmetic of a large call. On Linux, blocks of at least kHugePageBytes get a mapping of their own,
// 2 MiB aligned and rounded up to whole 2 MiB pages, marked MADV_HUGEPAGE: where the kernel offers transparent
// huge pages ("always" or "madvise"), first touch then faults 2 MiB at a time (measured: 0.07 ms per MiB), and the
// kernels' strided walks over an input block or output need far fewer TLB entries. Elsewhere, and for smaller
// blocks, it is the heap, 64-byte aligned.
#pragma once

#include <cstddef>

namespace convt {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// 64-byte aligned (2 MiB aligned when mapped); nullptr when memory is exhausted.
void* alloc_large(size_t bytes);
// p from alloc_large(bytes), with the same bytes.
void free_large(void* p, size_t bytes);

}  // namespace convt
