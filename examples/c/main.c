/* Runs the compiled SimpleNet from C.
 *
 *   aotc examples/simple_net.pt2 -o build/libsimple.so
 *   cc examples/c/main.c -Ibuild -Lbuild -lsimple -o build/simple_app
 *   LD_LIBRARY_PATH=build ./build/simple_app [input.npy]
 *
 * Reads a (1, 3, 32, 32) float32 input from a .npy file (or uses a fixed
 * pattern), runs the model and prints both outputs, one value per line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simple.h"

/* Reads the float32 payload of a .npy file into `out` (n floats). */
static int read_npy_f32(const char *path, float *out, size_t n) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  unsigned char head[10];
  if (fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6) != 0) { fclose(f); return -1; }
  size_t header_len = head[8] | (head[9] << 8);
  if (fseek(f, (long)(10 + header_len), SEEK_SET) != 0 || fread(out, sizeof(float), n, f) != n) { fclose(f); return -1; }
  fclose(f);
  return 0;
}

int main(int argc, char **argv) {
  AotcModel *model = NULL;
  if (simple_create(&model) != AOTC_OK) {
    fprintf(stderr, "create failed: %s\n", simple_last_error(NULL));
    return 1;
  }
  AotcTensorInfo info;
  for (int i = 0; i < simple_num_inputs(model); i++) {
    simple_input_info(model, i, &info);
    printf("input %d: %s rank %u\n", i, info.name, info.rank);
  }

  static float x[1 * 3 * 32 * 32];
  if (argc > 1) {
    if (read_npy_f32(argv[1], x, sizeof x / sizeof x[0]) != 0) {
      fprintf(stderr, "cannot read %s\n", argv[1]);
      return 1;
    }
  } else {
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)((i % 17) - 8) / 8.0f;
  }
  float out0[10], out1[10];
  if (simple_forward(model, x, out0, out1) != AOTC_OK) {
    fprintf(stderr, "run failed: %s\n", simple_last_error(model));
    return 1;
  }
  for (int i = 0; i < 10; i++) printf("output_0[%d] = %.7f\n", i, out0[i]);
  for (int i = 0; i < 10; i++) printf("output_1[%d] = %.7f\n", i, out1[i]);

  /* A wrong size is an error status with a message, never a crash. */
  const void *inputs[] = {x};
  size_t input_bytes[] = {sizeof x - 4};
  void *outputs[] = {out0, out1};
  size_t output_bytes[] = {sizeof out0, sizeof out1};
  int status = simple_run(model, inputs, input_bytes, outputs, output_bytes);
  printf("wrong size -> status %d: %s\n", status, simple_last_error(model));
  inputs[0] = NULL;
  input_bytes[0] = sizeof x;
  status = simple_run(model, inputs, input_bytes, outputs, output_bytes);
  printf("null input -> status %d: %s\n", status, simple_last_error(model));

  simple_free(model);
  return 0;
}
