/* The byte size of a tensor of the C API, for the C benchmark drivers
 * (harness.c, open_lib.h). Include after the library's generated header, which
 * defines AotcTensorInfo; element sizes by AOTC_DTYPE_* code. */
#ifndef AOTC_BENCH_TENSOR_BYTES_H
#define AOTC_BENCH_TENSOR_BYTES_H

#include <stddef.h>
#include <stdint.h>

static size_t bytes_of(const AotcTensorInfo *info) {
  static const size_t sizes[] = {4, 8, 2, 2, 8, 4, 2, 1, 1, 1};
  size_t n = sizes[info->dtype];
  for (uint32_t i = 0; i < info->rank; i++) n *= (size_t)info->shape[i];
  return n;
}

#endif
