#include <cstdio>
#include "core/conv_transpose.h"
int main() {
  convt::Problem p{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
  float x = 2, w = 3, b = 1, y = 0;
  int fail = convt::check(p).empty() ? 0 : 1;
  convt::conv_transpose2d(p, &x, &w, &b, &y, 2);
  fail += y != 7.0f;
  std::printf("%d passed, %d failed\n", 2 - fail, fail);
  return fail != 0;
}
