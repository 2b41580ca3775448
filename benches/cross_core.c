/* What it costs a thread to use data another core touched last.
 *
 *   cross_core SECONDS
 *
 * Two threads pinned to the first two CPUs the process may use each make
 * passes over 2 MB: read a buffer, write another (y = 0.5 x + 1), then wait
 * for the other thread. "private": each thread reads what it wrote itself
 * the pass before; "crossing": what the other thread wrote, and it writes
 * lines the other thread read (every line of both buffers changes cores
 * each pass, as data does between two kernels that split it differently).
 * Two access patterns: one contiguous run ("stream"), and rows of 28
 * floats spread over 16 planes ("rows", like a Winograd transform's
 * outputs). Each measurement is placed by the cache-line round trip before
 * and after it (bench_loop.c's aotc_bench_placement); at the end it
 * prints the median microseconds per pass per pattern, mode and placement.
 *
 *   cc -O2 -c benches/bench_loop.c -o /tmp/bench_loop.o
 *   cc -O2 -march=native benches/cross_core.c /tmp/bench_loop.o -o /tmp/cross_core -pthread
 *   /tmp/cross_core 40
 *
 * On the 2-vCPU VMs aotc is developed on (AMD EPYC, 32 MB L3 each), private
 * passes take the same time near and far (~275 us stream, ~570 us rows);
 * crossing passes cost nothing more near, and far 1030 us (stream) and
 * 1510 us (rows): each MB that changes cores costs a thread ~0.2 ms more
 * when the cores share no L3, however it is read.
 *
 * A second table splits that cost by how the line was touched last: the
 * two threads take turns over one 2 MB buffer (A, then B, then A, ...) and
 * B's turn is timed: B reads lines A wrote; B writes lines that A only
 * read (B wrote them the turn before); B writes lines A wrote; B reads
 * lines only it touches; B writes lines it has just read, which A wrote
 * (each thread's turn reads every line, then writes it). Far on those VMs:
 * 50, 210-260, 50, 19 and 33 us. A line that the other die holds as a
 * clean copy of what this core wrote is the costly one to write (each
 * store waits for the copy's invalidation, ~11x a private write;
 * prefetching it for writing does not help, non-temporal stores do),
 * reading remote data costs ~2.5x, and writing a line this core has just
 * read from the other die costs about what a private write does; near all
 * five take ~20-30 us. In aotc's terms: a kernel writing over an arena
 * slot whose previous contents the other thread read (a product reading
 * every channel of a Winograd transform that each thread wrote half of)
 * pays the most, unless the writing thread is the one that read them
 * last.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double aotc_bench_round_trip_ns(long rounds);
int aotc_bench_placement(double before, double after);
int aotc_bench_first_two_cpus(int cpus[2]);
void aotc_bench_pin(int cpu);

#define FLOATS (1 << 19)
#define PASSES 100
#define PLANES 16
#define ROW 28
enum { STREAM, ROWS, PATTERNS };
enum { PRIVATE, CROSSING, MODES };
enum { NEAR, FAR, PLACES }; /* aotc_bench_placement's values */
static const char *pattern_names[] = {"stream", "rows"};
static const char *mode_names[] = {"private", "crossing"};
static const char *place_names[] = {"near", "far"};

/* buffers[b][k]: pass p reads buffers[b][(p + 1) % 2] and writes
 * buffers[b][p % 2]; b is the thread's own (private) or alternates */
static float *buffers[2][2];
static int pattern, mode;
static int cpus[2];
static atomic_int arrived, generation;
static double seconds_per_pass;

static void wait_for_other(void) {
  int g = atomic_load(&generation);
  if (atomic_fetch_add(&arrived, 1) == 1) {
    atomic_store(&arrived, 0);
    atomic_fetch_add(&generation, 1);
  } else {
    while (atomic_load(&generation) == g) {
    }
  }
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pass(const float *src, float *dst) {
  if (pattern == STREAM) {
    for (int i = 0; i < FLOATS; i++) dst[i] = src[i] * 0.5f + 1.0f;
    return;
  }
  int plane = FLOATS / PLANES;
  for (int r = 0; r < plane / ROW; r++)
    for (int e = 0; e < PLANES; e++)
      for (int j = 0; j < ROW; j++) dst[e * plane + r * ROW + j] = src[e * plane + r * ROW + j] * 0.5f + 1.0f;
}

static void *thread_main(void *arg) {
  long me = (long)arg;
  aotc_bench_pin(cpus[me]);
  wait_for_other();
  double start = now();
  for (int p = 0; p < PASSES; p++) {
    /* read what was written on the pass before and write over what was
     * read on the pass before: by this thread, or (crossing) by the other */
    long owner = mode == PRIVATE ? me : (me + p + 1) % 2;
    pass(buffers[owner][(p + 1) % 2], buffers[owner][p % 2]);
    wait_for_other();
  }
  if (me == 0) seconds_per_pass = (now() - start) / PASSES;
  return NULL;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The turns table: see the top of the file. */
enum { READS_WRITTEN, WRITES_READ, WRITES_WRITTEN, READS_OWN, WRITES_OWN_READ, TURN_CASES };
static const char *turn_names[] = {"B-reads-lines-A-wrote", "B-writes-lines-A-read", "B-writes-lines-A-wrote", "B-reads-own-lines",
                                   "B-writes-lines-it-read"};
enum { TURNS = 100 };
static int turn_case;
static atomic_int turn;
static float *shared_buffer;
static double turn_us[TURNS];
static volatile float turn_sink;

/* A pass over the shared buffer: every float written, or one float per
 * cache line read. */
static void touch(int write, float value) {
  if (write) {
    for (int i = 0; i < FLOATS; i++) shared_buffer[i] = value;
    return;
  }
  float sum = 0;
  for (int i = 0; i < FLOATS; i += 16) sum += shared_buffer[i];
  turn_sink = sum;
}

static void *turn_main(void *arg) {
  long me = (long)arg;
  aotc_bench_pin(cpus[me]);
  for (int t = 0; t < TURNS; t++) {
    while (atomic_load(&turn) != me) {
    }
    if (turn_case == WRITES_OWN_READ) {
      /* both threads read every line (the other wrote it), then write it;
       * B's write is timed */
      touch(0, 0);
      double start = now();
      touch(1, (float)t);
      if (me == 1) turn_us[t] = (now() - start) * 1e6;
    } else if (me == 0) {
      if (turn_case != READS_OWN) touch(turn_case != WRITES_READ, (float)t);
    } else {
      double start = now();
      touch(turn_case == WRITES_READ || turn_case == WRITES_WRITTEN, (float)t);
      turn_us[t] = (now() - start) * 1e6;
    }
    atomic_store(&turn, 1 - me);
  }
  return NULL;
}

int main(int argc, char **argv) {
  int seconds = argc == 2 ? atoi(argv[1]) : 0;
  if (seconds < 1) {
    fprintf(stderr, "usage: cross_core SECONDS\n");
    return 2;
  }
  if (!aotc_bench_first_two_cpus(cpus)) {
    fprintf(stderr, "cross_core: needs two CPUs\n");
    return 2;
  }
  for (int t = 0; t < 2; t++)
    for (int k = 0; k < 2; k++) {
      buffers[t][k] = aligned_alloc(64, FLOATS * sizeof(float));
      memset(buffers[t][k], 0, FLOATS * sizeof(float));
    }
  /* microseconds per pass, by pattern, mode and placement */
  enum { MAX = 4096 };
  static double us[PATTERNS][MODES][PLACES][MAX];
  static int count[PATTERNS][MODES][PLACES];
  shared_buffer = aligned_alloc(64, FLOATS * sizeof(float));
  memset(shared_buffer, 0, FLOATS * sizeof(float));
  static double turns_us[TURN_CASES][PLACES][MAX];
  static int turns_count[TURN_CASES][PLACES];
  double start = now();
  while (now() - start < seconds) {
    for (turn_case = 0; turn_case < TURN_CASES; turn_case++) {
      double before = aotc_bench_round_trip_ns(2000);
      atomic_store(&turn, 0);
      pthread_t threads[2];
      for (long t = 0; t < 2; t++) pthread_create(&threads[t], NULL, turn_main, (void *)t);
      for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
      double after = aotc_bench_round_trip_ns(2000);
      int place = aotc_bench_placement(before, after);
      qsort(turn_us, TURNS, sizeof(double), by_value);
      if (place >= 0 && turns_count[turn_case][place] < MAX)
        turns_us[turn_case][place][turns_count[turn_case][place]++] = turn_us[TURNS / 2];
    }
    for (pattern = 0; pattern < PATTERNS; pattern++)
      for (mode = 0; mode < MODES; mode++) {
        double before = aotc_bench_round_trip_ns(2000);
        pthread_t threads[2];
        for (long t = 0; t < 2; t++) pthread_create(&threads[t], NULL, thread_main, (void *)t);
        for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
        double after = aotc_bench_round_trip_ns(2000);
        int place = aotc_bench_placement(before, after);
        if (place >= 0 && count[pattern][mode][place] < MAX)
          us[pattern][mode][place][count[pattern][mode][place]++] = seconds_per_pass * 1e6;
      }
  }
  printf("# pattern mode placement passes_measured median_us_per_pass\n");
  for (int p = 0; p < PATTERNS; p++)
    for (int m = 0; m < MODES; m++)
      for (int l = 0; l < PLACES; l++) {
        int n = count[p][m][l];
        qsort(us[p][m][l], n, sizeof(double), by_value);
        if (n)
          printf("%s %s %s %d %.1f\n", pattern_names[p], mode_names[m], place_names[l], n, us[p][m][l][n / 2]);
        else
          printf("%s %s %s 0 -\n", pattern_names[p], mode_names[m], place_names[l]);
      }
  printf("# turns over one 2 MB buffer: case placement rounds_measured median_us_per_turn_of_B\n");
  for (int c = 0; c < TURN_CASES; c++)
    for (int l = 0; l < PLACES; l++) {
      int n = turns_count[c][l];
      qsort(turns_us[c][l], n, sizeof(double), by_value);
      if (n)
        printf("%s %s %d %.1f\n", turn_names[c], place_names[l], n, turns_us[c][l][n / 2]);
      else
        printf("%s %s 0 -\n", turn_names[c], place_names[l]);
    }
  return 0;
}
