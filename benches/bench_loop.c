/* Times a generated library's `run` in a C loop, so that the side-by-side
 * harness (benches/side_by_side.py, through ctypes) measures the bare call
 * on preallocated buffers and no Python per run.
 *
 *   double aotc_bench_loop(run, model, inputs, input_bytes, outputs, output_bytes, runs)
 *
 * returns the seconds per run (CLOCK_MONOTONIC), or -1 if a run fails.
 */
#include <stddef.h>
#include <time.h>

typedef struct AotcModel AotcModel;
typedef int (*RunFn)(AotcModel *, const void *const *, const size_t *, void *const *, const size_t *);

double aotc_bench_loop(RunFn run, AotcModel *model, const void *const *inputs, const size_t *input_bytes,
                       void *const *outputs, const size_t *output_bytes, int runs) {
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (int i = 0; i < runs; i++)
    if (run(model, inputs, input_bytes, outputs, output_bytes)) return -1.0;
  clock_gettime(CLOCK_MONOTONIC, &end);
  return ((end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) * 1e-9) / runs;
}
