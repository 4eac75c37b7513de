// Portable micro-kernels (placeholder in the first version).
namespace convt {
namespace kernels {
int scalar_placeholder() { return 0; }
}  // namespace kernels
}  // namespace convt
