#include "core/large_alloc.h"

#include <cstdint>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace convt {
namespace {

constexpr std::align_val_t kAlign{64};  // a cache line: enough for any SIMD load the kernels use

#if defined(__linux__)
size_t mapped_bytes(size_t bytes) { return (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes; }
#endif

}  // namespace

void* alloc_large(size_t bytes) {
#if defined(__linux__)
  if (bytes >= kHugePageBytes) {
    const size_t len = mapped_bytes(bytes);
    void* m = mmap(nullptr, len + kHugePageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    // keep the 2 MiB aligned part: unmap the slack before and after it
    char* base = static_cast<char*>(m);
    char* p = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base) + kHugePageBytes - 1) &
                                      ~uintptr_t{kHugePageBytes - 1});
    if (p > base) munmap(base, size_t(p - base));
    char* end = base + len + kHugePageBytes;
    if (end > p + len) munmap(p + len, size_t(end - (p + len)));
    madvise(p, len, MADV_HUGEPAGE);  // a hint: without THP the block keeps 4 KiB pages
    return p;
  }
#endif
  return ::operator new(bytes, kAlign, std::nothrow);
}

void free_large(void* p, size_t bytes) {
  if (p == nullptr) return;
#if defined(__linux__)
  if (bytes >= kHugePageBytes) {
    munmap(p, mapped_bytes(bytes));
    return;
  }
#endif
  ::operator delete(p, kAlign);
}

}  // namespace convt
