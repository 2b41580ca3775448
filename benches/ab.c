/* A/B of two generated libraries of the same model in one process.
 *
 *   ab LIB_A PREFIX_A LIB_B PREFIX_B RUNS THREADS
 *
 * Runs A and B alternately (A B, B A, A B, ...), one run at a time, RUNS
 * times each at THREADS threads, and prints both medians and minima, the
 * ratio of the medians and the median of the per-pair ratios B/A. On the
 * shared 2-vCPU VMs the machine's speed changes within seconds (at times
 * each of two busy threads runs at half speed), so separate processes timed
 * one after the other disagree by far more than a change is worth; runs
 * interleaved in one process see the same machine. Each library has its
 * own copy of the runtime (and pool), and they never run at once.
 *
 * After each pair it measures the cache-line round trip between the two
 * CPUs and also prints the pairs run with the vCPUs "near" (sharing a
 * last-level cache) and those run "far" (bench_loop.c's
 * aotc_bench_placement): a change to how threads share data shows in the
 * far pairs.
 *
 * Build it against any generated header, which defines the C API:
 *
 *   aotc model.pt2 -o /tmp/a/liba.so      (at revision A)
 *   aotc model.pt2 -o /tmp/b/libb.so      (at revision B)
 *   cc -O2 -c benches/bench_loop.c -o /tmp/bench_loop.o
 *   cc -O2 -include /tmp/a/liba.h benches/ab.c /tmp/bench_loop.o -o /tmp/ab -ldl -pthread
 *   /tmp/ab /tmp/a/liba.so a /tmp/b/libb.so b 500 2
 *
 * Inputs are a fixed pattern (values do not change the work).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "open_lib.h"

static double run_once(Lib *lib) {
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  if (lib->api->run(lib->model, (const void *const *)lib->in, lib->in_bytes, lib->out, lib->out_bytes) != AOTC_OK) {
    fprintf(stderr, "ab: run failed: %s\n", lib->api->last_error(lib->model));
    exit(1);
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  return (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) * 1e-9;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double aotc_bench_round_trip_ns(long rounds);
int aotc_bench_placement(double before, double after);

/* Medians of A, B and the per-pair ratio over the pairs `chosen` (sorts
 * copies), printed after `label`. */
static void report(const char *label, const double *ta, const double *tb, const int *chosen, int runs) {
  double *a = malloc(runs * sizeof(double)), *b = malloc(runs * sizeof(double)), *r = malloc(runs * sizeof(double));
  int n = 0;
  for (int i = 0; i < runs; i++)
    if (chosen[i]) {
      a[n] = ta[i];
      b[n] = tb[i];
      r[n] = tb[i] / ta[i];
      n++;
    }
  if (n == 0) {
    printf("%s: no pairs\n", label);
  } else {
    qsort(a, n, sizeof(double), by_value);
    qsort(b, n, sizeof(double), by_value);
    qsort(r, n, sizeof(double), by_value);
    printf("%s (%d pairs): A median %.3f ms min %.3f | B median %.3f ms min %.3f | B/A: medians %.4f, per-pair median %.4f, minima %.4f\n",
           label, n, a[n / 2] * 1e3, a[0] * 1e3, b[n / 2] * 1e3, b[0] * 1e3, b[n / 2] / a[n / 2], r[n / 2], b[0] / a[0]);
  }
  free(a);
  free(b);
  free(r);
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: ab LIB_A PREFIX_A LIB_B PREFIX_B RUNS THREADS\n");
    return 2;
  }
  int runs = atoi(argv[5]), threads = atoi(argv[6]);
  if (runs < 1 || threads < 1) {
    fprintf(stderr, "ab: RUNS and THREADS must be at least 1\n");
    return 2;
  }
  Lib a, b;
  open_lib(&a, "ab", argv[1], argv[2], threads);
  open_lib(&b, "ab", argv[3], argv[4], threads);
  for (int i = 0; i < 20; i++) {
    run_once(&a);
    run_once(&b);
  }
  double *ta = malloc(runs * sizeof(double)), *tb = malloc(runs * sizeof(double));
  double *trip = malloc((runs + 1) * sizeof(double));
  trip[0] = aotc_bench_round_trip_ns(2000);
  for (int i = 0; i < runs; i++) {
    // alternate which goes first, so neither always runs on a warmer machine
    if (i % 2) {
      tb[i] = run_once(&b);
      ta[i] = run_once(&a);
    } else {
      ta[i] = run_once(&a);
      tb[i] = run_once(&b);
    }
    trip[i + 1] = aotc_bench_round_trip_ns(2000);
  }
  int *all = malloc(runs * sizeof(int)), *near = malloc(runs * sizeof(int)), *far = malloc(runs * sizeof(int));
  for (int i = 0; i < runs; i++) {
    int place = aotc_bench_placement(trip[i], trip[i + 1]);
    all[i] = 1;
    near[i] = place == 0;
    far[i] = place == 1;
  }
  report("all", ta, tb, all, runs);
  report("near", ta, tb, near, runs);
  report("far", ta, tb, far, runs);
  a.api->free(a.model);
  b.api->free(b.model);
  return 0;
}
