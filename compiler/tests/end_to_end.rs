//! End-to-end tests: compiled programs against PyTorch's outputs.
//!
//! They read the fixtures written by `tools/export_fixtures.py` from
//! `AOTC_FIXTURES` (tools/test.sh sets it). Tolerance: max abs error <= 1e-5
//! for SimpleNet in float32.

mod fuzz;

use aotc::npy;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOLERANCE: f32 = 1e-5;

fn fixtures() -> PathBuf {
    let dir = std::env::var("AOTC_FIXTURES")
        .expect("set AOTC_FIXTURES to the folder written by tools/export_fixtures.py (tools/test.sh does)");
    PathBuf::from(dir)
}

fn aotc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aotc"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn check(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn as_f32(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn reference(k: usize) -> Vec<f32> {
    as_f32(&npy::read(&fixtures().join(format!("simple_net_output_{k}.npy"))).unwrap().data)
}

fn max_abs_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "output sizes differ");
    got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

/// Values printed by the C and Rust examples: `output_K[i] = v`.
fn printed_outputs(stdout: &str, k: usize) -> Vec<f32> {
    let prefix = format!("output_{k}[");
    stdout
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| l.split('=').nth(1).unwrap().trim().parse().unwrap())
        .collect()
}

fn run_matches_torch(archive: &str) {
    let out = tempfile::tempdir().unwrap();
    check(aotc()
        .arg("run")
        .arg(fixtures().join(archive))
        .arg("--input")
        .arg(fixtures().join("simple_net_input.npy"))
        .arg("--output-dir")
        .arg(out.path()));
    for k in 0..2 {
        let got = npy::read(&out.path().join(format!("output_{k}.npy"))).unwrap();
        assert_eq!(got.ty.shape, vec![1, 10]);
        let err = max_abs_error(&as_f32(&got.data), &reference(k));
        assert!(err <= TOLERANCE, "{archive} output {k}: max abs error {err} > {TOLERANCE}");
    }
}

#[test]
fn simple_net_default_export_matches_torch() {
    run_matches_torch("simple_net.pt2");
}

#[test]
fn simple_net_core_aten_form_matches_torch() {
    run_matches_torch("simple_net_core.pt2");
}

/// Compiles `source` as `main.c` in `dir` against the header and
/// `lib<library>.so` there (and pthreads), runs it with `env` and returns
/// what it printed.
fn run_c_program(dir: &Path, source: &str, library: &str, env: &[(&str, &str)]) -> String {
    std::fs::write(dir.join("main.c"), source).unwrap();
    let app = dir.join("app");
    let lib = format!("-l{library}");
    check(Command::new("cc").arg(dir.join("main.c")).arg("-I").arg(dir).arg("-L").arg(dir).args([lib.as_str(), "-lpthread", "-o"]).arg(&app));
    check(Command::new(&app).env("LD_LIBRARY_PATH", dir).envs(env.iter().copied()))
}

/// Builds libsimple.so into a temporary folder.
fn build_simple(dir: &Path) -> PathBuf {
    let lib = dir.join("libsimple.so");
    check(aotc().arg(fixtures().join("simple_net.pt2")).arg("-o").arg(&lib));
    lib
}

#[test]
fn c_example_matches_torch() {
    let dir = tempfile::tempdir().unwrap();
    build_simple(dir.path());
    let app = dir.path().join("app");
    check(Command::new("cc")
        .arg(repo().join("examples/c/main.c"))
        .arg("-I")
        .arg(dir.path())
        .arg("-L")
        .arg(dir.path())
        .args(["-lsimple", "-o"])
        .arg(&app));
    let stdout = check(Command::new(&app).arg(fixtures().join("simple_net_input.npy")).env("LD_LIBRARY_PATH", dir.path()));
    for k in 0..2 {
        let err = max_abs_error(&printed_outputs(&stdout, k), &reference(k));
        assert!(err <= TOLERANCE, "C example output {k}: max abs error {err}");
    }
    assert!(
        stdout.contains("wrong size -> status 2: run: input 0 ('x') has 12284 bytes but float32 [1, 3, 32, 32] needs 12288"),
        "{stdout}"
    );
    assert!(stdout.contains("null input -> status 1: run: input 0 ('x') is a null pointer"), "{stdout}");
}

/// Builds the C benchmark tool `benches/<name>.c` with `benches/bench_loop.c`
/// into `dir`, against a generated `header` when it opens a library.
fn build_bench_tool(dir: &Path, name: &str, header: Option<&Path>) -> PathBuf {
    let (object, tool) = (dir.join("bench_loop.o"), dir.join(name));
    check(Command::new("cc").args(["-O2", "-c"]).arg(repo().join("benches/bench_loop.c")).arg("-o").arg(&object));
    let mut cc = Command::new("cc");
    cc.arg("-O2");
    if let Some(header) = header {
        cc.arg("-include").arg(header);
    }
    check(cc.arg(repo().join(format!("benches/{name}.c"))).arg(&object).arg("-o").arg(&tool).args(["-ldl", "-pthread"]));
    tool
}

/// `benches/ab.c` builds against a generated header and times two builds
/// of one model in one process.
#[test]
fn ab_tool_times_two_builds() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
        build_simple(d);
    }
    let ab = build_bench_tool(dir.path(), "ab", Some(&a.join("simple.h")));
    let stdout = check(Command::new(&ab).arg(a.join("libsimple.so")).arg("simple").arg(b.join("libsimple.so")).args(["simple", "5", "2"]));
    assert!(stdout.starts_with("all (5 pairs): A median "), "{stdout}");
    assert!(stdout.contains("| B/A: medians "), "{stdout}");
    for placement in ["\nnear", "\nfar"] {
        assert!(stdout.contains(placement), "{stdout}");
    }
}

/// `benches/watch.c` times a library batch by batch, alternating 1 and 2
/// threads with THREADS 0.
#[test]
fn watch_tool_alternates_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    build_simple(dir.path());
    let watch = build_bench_tool(dir.path(), "watch", Some(&dir.path().join("simple.h")));
    let stdout = check(Command::new(&watch).arg(dir.path().join("libsimple.so")).args(["simple", "0", "0.2", "2"]));
    let threads: Vec<&str> = stdout.lines().skip(1).map(|l| l.split_whitespace().nth(1).unwrap_or("")).collect();
    assert!(stdout.starts_with("# start_s threads runs ms_per_run round_trip_ns"), "{stdout}");
    assert!(threads.len() >= 2 && threads.iter().enumerate().all(|(i, t)| *t == ["1", "2"][i % 2]), "{stdout}");
}

/// `benches/cross_core.c` builds and prints a median for every pattern,
/// mode and placement, then for every case of its turns table and
/// placement (a dash where none was measured).
#[test]
fn cross_core_tool_reports_each_case() {
    let dir = tempfile::tempdir().unwrap();
    let tool = build_bench_tool(dir.path(), "cross_core", None);
    let out = Command::new(&tool).arg("1").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if stderr.contains("needs two CPUs") {
        return;
    }
    assert!(out.status.success(), "{stdout}{stderr}");
    let cases: Vec<String> = ["stream", "rows"]
        .iter()
        .flat_map(|p| ["private", "crossing"].map(move |m| (p, m)))
        .flat_map(|(p, m)| ["near", "far"].map(move |l| format!("{p} {m} {l} ")))
        .collect();
    let turns: Vec<String> = ["B-reads-lines-A-wrote", "B-writes-lines-A-read", "B-writes-lines-A-wrote", "B-reads-own-lines", "B-writes-lines-it-read"]
        .iter()
        .flat_map(|c| ["near", "far"].map(move |l| format!("{c} {l} ")))
        .collect();
    let (passes, turn_rows) = stdout.split_once("# turns").unwrap_or((&stdout, ""));
    let rows: Vec<&str> = passes.lines().skip(1).collect();
    assert_eq!(rows.len(), cases.len(), "{stdout}");
    for (row, case) in rows.iter().zip(&cases) {
        assert!(row.starts_with(case.as_str()), "{stdout}");
    }
    let rows: Vec<&str> = turn_rows.lines().skip(1).collect();
    assert_eq!(rows.len(), turns.len(), "{stdout}");
    for (row, case) in rows.iter().zip(&turns) {
        assert!(row.starts_with(case.as_str()), "{stdout}");
    }
}

#[test]
fn rust_example_matches_torch() {
    let dir = tempfile::tempdir().unwrap();
    build_simple(dir.path());
    let stdout = check(Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--manifest-path"])
        .arg(repo().join("examples/rust/Cargo.toml"))
        .arg("--target-dir")
        .arg(std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo().join("target")).join("examples-rust"))
        .arg("--")
        .arg(fixtures().join("simple_net_input.npy"))
        .env("AOTC_LIB_DIR", dir.path()));
    for k in 0..2 {
        let err = max_abs_error(&printed_outputs(&stdout, k), &reference(k));
        assert!(err <= TOLERANCE, "Rust example output {k}: max abs error {err}");
    }
    assert!(stdout.contains("wrong size -> run: input 0 ('x') has 12284 bytes"), "{stdout}");
}

#[test]
fn shared_library_needs_only_the_c_library() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build_simple(dir.path());
    let ldd = check(Command::new("ldd").arg(&lib));
    for line in ldd.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let allowed = name.starts_with("linux-vdso") || name.starts_with("libc.so") || name.contains("ld-linux") || name.starts_with("libm.so");
        assert!(allowed, "libsimple.so depends on {name}:\n{ldd}");
    }
}

#[test]
fn two_libraries_link_into_one_program() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let program = r#"
#include <stdio.h>
#include "one.h"
#include "two.h"
int main(void) {
  AotcModel *a, *b;
  if (one_create(&a) || two_create(&b)) return 1;
  static float x[3072];
  for (int i = 0; i < 3072; i++) x[i] = (float)(i % 7) / 7.0f;
  float a0[10], a1[10], b0[10], b1[10];
  if (one_forward(a, x, a0, a1) || two_forward(b, x, b0, b1)) return 2;
  float d = 0;
  for (int i = 0; i < 10; i++) d += (a0[i] - b0[i]) * (a0[i] - b0[i]) + (a1[i] - b1[i]) * (a1[i] - b1[i]);
  printf("%s\n", d < 1e-10f ? "same" : "different");
  one_free(a); two_free(b);
  return 0;
}
"#;
    std::fs::write(d.join("main.c"), program).unwrap();
    for ext in ["so", "a"] {
        check(aotc().arg(fixtures().join("simple_net.pt2")).arg("-o").arg(d.join(format!("libone.{ext}"))));
        check(aotc().arg(fixtures().join("simple_net_core.pt2")).arg("-o").arg(d.join(format!("libtwo.{ext}"))));
        let app = d.join(format!("app_{ext}"));
        let mut cc = Command::new("cc");
        cc.arg(d.join("main.c")).arg("-I").arg(d).arg("-o").arg(&app);
        if ext == "so" {
            cc.arg("-L").arg(d).args(["-lone", "-ltwo"]);
        } else {
            cc.arg(d.join("libone.a")).arg(d.join("libtwo.a")).args(["-lm", "-lpthread", "-ldl"]);
        }
        check(&mut cc);
        let stdout = check(Command::new(&app).env("LD_LIBRARY_PATH", d));
        assert_eq!(stdout.trim(), "same", "the two forms of SimpleNet disagree ({ext})");
    }
}

/// Truncated and bit-flipped archives fail with a one-line error and exit
/// status 1: never a panic, never a crash.
#[test]
fn corrupt_archives_never_crash() {
    let good = std::fs::read(fixtures().join("simple_net.pt2")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 1..40 {
        let len = good.len() * i / 40;
        cases.push((format!("truncated at {len}"), good[..len].to_vec()));
    }
    for i in 0..40 {
        let at = good.len() * i / 40 + 7;
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        cases.push((format!("byte {at} flipped"), bad));
    }
    for (what, bytes) in cases {
        let path = dir.path().join("bad.pt2");
        std::fs::write(&path, &bytes).unwrap();
        let out = aotc().arg(&path).args(["--emit", "aten"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        match out.status.code() {
            Some(0) => {} // the damage hit bytes that nothing reads
            Some(1) => assert!(stderr.starts_with("error: "), "{what}: {stderr}"),
            other => panic!("{what}: exit {other:?}\n{stderr}"),
        }
    }
}

/// Every program written by tools/export_programs.py (one or more per
/// lowering rule, both export forms) matches torch: max abs error <= 1e-5
/// for floats (scaled by max(1, max |reference|)), exact for integers and bools.
#[test]
fn programs_match_torch() {
    let root = fixtures().join("programs");
    let mut names: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    assert!(names.len() >= 16, "expected the exported programs in {}", root.display());
    let mut failures = Vec::new();
    for dir in names {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let out = tempfile::tempdir().unwrap();
        let mut cmd = aotc();
        cmd.arg("run").arg(dir.join("model.pt2")).arg("--output-dir").arg(out.path());
        // programs that mutate buffers are checked after several runs on one handle
        if let Ok(runs) = std::fs::read_to_string(dir.join("runs")) {
            cmd.arg("--runs").arg(runs.trim());
        }
        for k in 0.. {
            let input = dir.join(format!("input_{k}.npy"));
            if !input.exists() {
                break;
            }
            cmd.arg("--input").arg(input);
        }
        let result = cmd.output().unwrap();
        if !result.status.success() {
            failures.push(format!("{name}: {}", String::from_utf8_lossy(&result.stderr).trim()));
            continue;
        }
        for k in 0.. {
            let reference = dir.join(format!("output_{k}.npy"));
            if !reference.exists() {
                break;
            }
            let want = npy::read(&reference).unwrap();
            let got = npy::read(&out.path().join(format!("output_{k}.npy"))).unwrap();
            if let Some(problem) = compare(&got, &want) {
                failures.push(format!("{name} output {k}: {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// Compares a compiled output with torch's: None when they agree.
fn compare(got: &aotc::program::HostTensor, want: &aotc::program::HostTensor) -> Option<String> {
    if got.ty != want.ty {
        return Some(format!("type {} but torch gives {}", got.ty, want.ty));
    }
    let (g, w) = (got.to_f64(), want.to_f64());
    if !want.ty.dtype.is_float() {
        let wrong = g.iter().zip(&w).filter(|(a, b)| a != b).count();
        return (wrong > 0).then(|| format!("{wrong} of {} values differ (exact match required)", w.len()));
    }
    let scale = w.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let err = g.iter().zip(&w).map(|(a, b)| if a.is_nan() && b.is_nan() { 0.0 } else { (a - b).abs() }).fold(0.0, f64::max);
    (err.is_nan() || err > 1e-5 * scale).then(|| format!("max abs error {err} > {}", 1e-5 * scale))
}

/// A C array initializer of an f32 tensor's values.
fn c_floats(values: &[f32]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:e}f")).collect();
    format!("{{{}}}", items.join(", "))
}

/// Every name in these archives (input, nodes, parameters, the Python file
/// of the stack trace) is hostile: quotes and C code, comment closers,
/// assembler directives, newlines, %, NUL, non-ASCII, 64 KiB. Compiled
/// through `aotc run`, into a .so and a .a, and with a C program that
/// includes the generated header, each must compute what torch computed,
/// and nothing of the names may run or pull in a host file.
#[test]
fn hostile_names_are_data() {
    let dir = fixtures().join("hostile");
    let marker = Path::new("/tmp/aotc-hostile-marker");
    let _ = std::fs::remove_file(marker);
    let input = npy::read(&dir.join("input.npy")).unwrap();
    let want = as_f32(&npy::read(&dir.join("output_0.npy")).unwrap().data);
    let hostname = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()).filter(|h| h.len() >= 8);
    let kinds = std::fs::read_to_string(dir.join("kinds.txt")).unwrap();
    let program = format!(
        r#"
#include <stdio.h>
#include <string.h>
#include "hostile.h"
int main(void) {{
  AotcModel *m;
  if (hostile_create(&m) != AOTC_OK) {{ puts(hostile_last_error(NULL)); return 1; }}
  AotcTensorInfo info;
  if (hostile_input_info(m, 0, &info) != AOTC_OK || strlen(info.name) == 0) return 2;
  static const float x[] = {};
  float y[6];
  if (hostile_forward(m, x, y) != AOTC_OK) {{ puts(hostile_last_error(m)); return 3; }}
  for (int i = 0; i < 6; i++) printf("output_0[%d] = %.9g\n", i, y[i]);
  hostile_free(m);
  return 0;
}}
"#,
        c_floats(&as_f32(&input.data))
    );
    for kind in kinds.lines().filter(|k| !k.is_empty()) {
        let archive = dir.join(format!("{kind}.pt2"));
        let out = tempfile::tempdir().unwrap();
        check(aotc().arg("run").arg(&archive).arg("--input").arg(dir.join("input.npy")).arg("--output-dir").arg(out.path()));
        let got = as_f32(&npy::read(&out.path().join("output_0.npy")).unwrap().data);
        assert!(max_abs_error(&got, &want) <= TOLERANCE, "{kind}: aotc run differs from torch");
        for ext in ["so", "a"] {
            let d = tempfile::tempdir().unwrap();
            let lib = d.path().join(format!("libhostile.{ext}"));
            check(aotc().arg(&archive).arg("-o").arg(&lib));
            if let Some(h) = &hostname {
                let bytes = std::fs::read(&lib).unwrap();
                assert!(!bytes.windows(h.len()).any(|w| w == h.as_bytes()), "{kind}: /etc/hostname is inside the {ext}");
            }
            std::fs::write(d.path().join("main.c"), &program).unwrap();
            let app = d.path().join("app");
            let mut cc = Command::new("cc");
            cc.args(["-Wall", "-Werror", "-std=c11"]).arg(d.path().join("main.c")).arg("-I").arg(d.path()).arg("-o").arg(&app);
            if ext == "so" {
                cc.arg("-L").arg(d.path()).arg("-lhostile");
            } else {
                cc.arg(&lib).args(["-lm", "-lpthread", "-ldl"]);
            }
            check(&mut cc);
            let stdout = check(Command::new(&app).env("LD_LIBRARY_PATH", d.path()));
            let err = max_abs_error(&printed_outputs(&stdout, 0), &want);
            assert!(err <= TOLERANCE, "{kind} ({ext}): the C program's outputs differ from torch by {err}");
        }
        assert!(!marker.exists(), "{kind}: a name ran code (it created {})", marker.display());
    }
    // Names that are not text, and weights that name a file outside the archive.
    for (bad, why) in [("bad_utf8", "invalid unicode"), ("path_traversal", "not found in archive")] {
        let out = aotc().arg(dir.join(format!("{bad}.pt2"))).arg("--emit").arg("aten").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(why) && stderr.lines().count() == 1, "{bad}: {stderr}");
    }
}

/// One handle used by several threads at once: every run either succeeds
/// with exactly the single-threaded result or returns AOTC_ERROR_BUSY,
/// never a wrong output. And a handle's last error is this thread's last
/// failed call on it, cleared by a call that succeeds.
#[test]
fn shared_handle_is_busy_never_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build_simple(d);
    let program = r#"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "simple.h"
#define THREADS 4
#define RUNS 300
static AotcModel *shared;
static float inputs[THREADS][3072], expected[THREADS][2][10];
static int busy, wrong, failed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *worker(void *arg) {
  int t = (int)(long)arg;
  for (int r = 0; r < RUNS; r++) {
    float a[10], b[10];
    int s = simple_forward(shared, inputs[t], a, b);
    pthread_mutex_lock(&lock);
    if (s == AOTC_ERROR_BUSY) busy++;
    else if (s != AOTC_OK) failed++;
    else if (memcmp(a, expected[t][0], sizeof a) || memcmp(b, expected[t][1], sizeof b)) wrong++;
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}
int main(void) {
  if (simple_create(&shared)) return 1;
  for (int t = 0; t < THREADS; t++) {
    for (int i = 0; i < 3072; i++) inputs[t][i] = (float)((i * (t + 3)) % 11) / 11.0f - 0.3f;
    if (simple_forward(shared, inputs[t], expected[t][0], expected[t][1])) return 2;
  }
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, worker, (void *)(long)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  printf("busy %d wrong %d failed %d\n", busy, wrong, failed);
  /* errors: set by a failed call, cleared by a successful one, per thread */
  const void *in[1] = {inputs[0]};
  size_t short_size[1] = {4}, ok_size[1] = {3072 * 4}, out_size[2] = {40, 40};
  float a[10], b[10];
  void *out[2] = {a, b};
  int s = simple_run(shared, in, short_size, out, out_size);
  printf("wrong size %d: %s\n", s, simple_last_error(shared));
  s = simple_run(shared, in, ok_size, out, out_size);
  printf("after success %d: [%s]\n", s, simple_last_error(shared));
  s = simple_run(NULL, in, ok_size, out, out_size);
  printf("null handle %d: %s\n", s, simple_last_error(NULL));
  simple_free(shared);
  return 0;
}
"#;
    let stdout = run_c_program(d, program, "simple", &[]);
    let first = stdout.lines().next().unwrap_or("");
    assert!(first.ends_with("wrong 0 failed 0"), "{stdout}");
    assert!(stdout.contains("wrong size 2: run: input 0 ('x') has 4 bytes"), "{stdout}");
    assert!(stdout.contains("after success 0: []"), "{stdout}");
    assert!(stdout.contains("null handle 1: run: the model handle is null"), "{stdout}");
}

/// Threads: 8 caller threads, each with its own handle at 1 to 3 threads,
/// running at once, give exactly the single-threaded outputs; the thread
/// count can change between runs; 0 and negative counts are errors that
/// leave it as it was; AOTC_NUM_THREADS sets the default; freeing the last
/// handle stops the worker threads. The model (a 3x3 convolution, 256 -> 512
/// channels at 7x7) has kernels that run on the pool, and is a Winograd
/// convolution whose transformed filter (row panels of [16, 512, 256]) the
/// runtime makes from the stored weight when the handles are created (the
/// library holds the 4.7 MB weight, not the 8.4 MB transform), shared by
/// the handles alive at once and made anew after the last is freed.
#[test]
fn handles_on_many_threads_match_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let archive = fixtures().join("programs/conv_large_weight_ragged/model.pt2");
    let plan = check(aotc().arg(&archive).args(["--emit", "parallel"]));
    assert!(plan.lines().filter(|l| l.starts_with("// parallel: ")).count() >= 2, "{plan}");
    assert!(plan.contains("@aotc_model_forward(%arg0: memref<16x32x256x16xf32>"), "{plan}");
    check(aotc().arg(&archive).arg("-o").arg(d.join("libmodel.so")));
    let library_bytes = std::fs::metadata(d.join("libmodel.so")).unwrap().len();
    assert!(library_bytes < 8 << 20, "{library_bytes} bytes");
    let program = r#"
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
#define CALLERS 8
#define RUNS 20
static size_t in_bytes, out_bytes;
static float *inputs[CALLERS], *expected[CALLERS];
static int wrong, failed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static size_t bytes_of(AotcTensorInfo *info) {
  size_t n = 4;
  for (uint32_t i = 0; i < info->rank; i++) n *= (size_t)info->shape[i];
  return n;
}
static int run(AotcModel *m, float *in, float *out) {
  const void *ins[1] = {in};
  void *outs[1] = {out};
  return model_run(m, ins, &in_bytes, outs, &out_bytes);
}
static void *caller(void *arg) {
  int t = (int)(long)arg;
  AotcModel *m;
  float *out = malloc(out_bytes);
  if (model_create(&m) || model_set_num_threads(m, 1 + t % 3)) { failed++; return NULL; }
  for (int r = 0; r < RUNS; r++) {
    int s = run(m, inputs[t], out);
    pthread_mutex_lock(&lock);
    if (s != AOTC_OK) failed++;
    else if (memcmp(out, expected[t], out_bytes)) wrong++;
    pthread_mutex_unlock(&lock);
  }
  model_free(m);
  free(out);
  return NULL;
}
static int threads_of_process(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}
int main(void) {
  AotcModel *one;
  AotcTensorInfo info;
  if (model_create(&one)) return 1;
  model_input_info(one, 0, &info);
  in_bytes = bytes_of(&info);
  model_output_info(one, 0, &info);
  out_bytes = bytes_of(&info);
  printf("default %d\n", model_num_threads(one));
  if (model_set_num_threads(one, 1)) return 2;
  for (int t = 0; t < CALLERS; t++) {
    inputs[t] = malloc(in_bytes);
    expected[t] = malloc(out_bytes);
    for (size_t i = 0; i < in_bytes / 4; i++) inputs[t][i] = (float)((i * (t + 3)) % 13) / 13.0f - 0.4f;
    if (run(one, inputs[t], expected[t])) return 3;
  }
  /* the count changes between runs; the outputs do not */
  int changed = 0;
  float *out = malloc(out_bytes);
  for (int n = 1; n <= 4; n++) {
    if (model_set_num_threads(one, n) || run(one, inputs[1], out)) return 4;
    changed += memcmp(out, expected[1], out_bytes) != 0;
  }
  printf("changed %d\n", changed);
  int zero = model_set_num_threads(one, 0);
  printf("zero %d: %s\n", zero, model_last_error(one));
  printf("negative %d, still %d\n", model_set_num_threads(one, -3), model_num_threads(one));
  model_free(one);
  pthread_t th[CALLERS];
  for (int t = 0; t < CALLERS; t++) pthread_create(&th[t], NULL, caller, (void *)(long)t);
  for (int t = 0; t < CALLERS; t++) pthread_join(th[t], NULL);
  printf("wrong %d failed %d\n", wrong, failed);
  printf("threads after free %d\n", threads_of_process());
  return 0;
}
"#;
    let stdout = run_c_program(d, program, "model", &[("AOTC_NUM_THREADS", "3")]);
    assert!(stdout.contains("default 3\n"), "{stdout}");
    assert!(stdout.contains("changed 0\n"), "{stdout}");
    let invalid = aotc_runtime::AOTC_ERROR_INVALID_ARGUMENT;
    assert!(stdout.contains(&format!("zero {invalid}: set_num_threads: 0 threads (at least 1)")), "{stdout}");
    assert!(stdout.contains(&format!("negative {invalid}, still 4\n")), "{stdout}");
    assert!(stdout.contains("wrong 0 failed 0\n"), "{stdout}");
    assert!(stdout.contains("threads after free 1\n"), "{stdout}");
}

/// The ABI has one definition (`aotc_runtime::abi`); the generated header
/// must agree with the Rust side on every code and struct layout: a C
/// program prints them and they are compared with the Rust values.
#[test]
fn c_header_agrees_with_the_rust_abi() {
    use aotc_runtime::abi;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build_simple(d);
    let mut c = String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"simple.h\"\nint main(void) {\n");
    c += "  printf(\"version %d\\n\", AOTC_ABI_VERSION);\n";
    c += "  printf(\"api %zu info %zu\\n\", sizeof(AotcApi), sizeof(AotcTensorInfo));\n";
    let names = abi::STATUSES.iter().map(|(n, ..)| *n).chain(abi::DTYPES.iter().map(|(n, ..)| *n));
    for name in names {
        c += &format!("  printf(\"{name} %d\\n\", (int){name});\n");
    }
    for f in abi::FUNCTIONS {
        c += &format!("  printf(\"{0} %zu\\n\", offsetof(AotcApi, {0}));\n", f.name);
    }
    c += "  return simple_api()->abi_version == AOTC_ABI_VERSION ? 0 : 1;\n}\n";
    let stdout = run_c_program(d, &c, "simple", &[]);
    let pointer = std::mem::size_of::<usize>();
    let mut expected = vec![
        format!("version {}", abi::ABI_VERSION),
        format!("api {} info {}", std::mem::size_of::<abi::Api>(), std::mem::size_of::<abi::TensorInfo>()),
    ];
    expected.extend(abi::STATUSES.iter().map(|(n, v, _)| format!("{n} {v}")));
    expected.extend(abi::DTYPES.iter().map(|(n, v, _)| format!("{n} {v}")));
    // the Rust table: abi_version (padded to a pointer), then one pointer each
    expected.extend(abi::FUNCTIONS.iter().enumerate().map(|(i, f)| format!("{} {}", f.name, pointer * (i + 1))));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The archives mutants are made from: SimpleNet in both forms, the small
/// programs of every lowering rule, and the hostile and limits bases.
fn fuzz_seeds() -> Vec<(String, Vec<u8>)> {
    let root = fixtures();
    let mut paths = vec![
        root.join("simple_net.pt2"),
        root.join("simple_net_core.pt2"),
        root.join("hostile/base.pt2"),
        root.join("limits/base.pt2"),
        root.join("inconsistent/base.pt2"),
    ];
    let mut programs: Vec<PathBuf> = std::fs::read_dir(root.join("programs")).unwrap().map(|e| e.unwrap().path().join("model.pt2")).collect();
    programs.sort();
    paths.extend(programs);
    paths.into_iter().map(|p| (p.display().to_string(), std::fs::read(&p).unwrap())).collect()
}

/// Mutated archives (tests/fuzz: bytes of the archive or of one entry, and
/// the structure of model.json and the weights configs) through the reader,
/// import, lowering and bufferization in this process: each gives an error
/// (one line per problem) or compiles; none may panic, crash or allocate
/// what the archive claims. Every 40th accepted mutant also runs through
/// `aotc run`. AOTC_FUZZ_FIRST picks the first case, AOTC_FUZZ_TRACE=1 names
/// each case before it runs. CI runs AOTC_FUZZ_ITERATIONS=600 (the default); a long run:
///   AOTC_FUZZ_ITERATIONS=100000 AOTC_FUZZ_SEED=7 cargo test --release -p aotc \
///     --test end_to_end fuzzed_archives -- --nocapture
#[test]
fn fuzzed_archives_never_panic() {
    let iterations = env_number("AOTC_FUZZ_ITERATIONS", 600);
    let seed = env_number("AOTC_FUZZ_SEED", 1);
    let seeds = fuzz_seeds();
    let dir = tempfile::tempdir().unwrap();
    let failures = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo().join("target")).join("fuzz-failures");
    let options = aotc::driver::Options { target: Default::default() };
    let (mut accepted, mut rejected, mut ran) = (0u64, 0u64, 0u64);
    let mut problems = Vec::new();
    let start = std::time::Instant::now();
    let first = env_number("AOTC_FUZZ_FIRST", 0);
    // AOTC_FUZZ_TRACE=1 names each case before it runs (to find a crash)
    let trace = std::env::var("AOTC_FUZZ_TRACE").is_ok();
    for i in first..first + iterations {
        // each case is reproducible on its own from (seed, i)
        let mut rng = fuzz::Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(i));
        let (name, base) = &seeds[rng.below(seeds.len())];
        let (what, bytes) = fuzz::mutate(base, &mut rng);
        let path = dir.path().join("mutant.pt2");
        std::fs::write(&path, &bytes).unwrap();
        if trace {
            eprintln!("case {i} ({name}; {})", what.chars().take(200).collect::<String>());
            std::fs::write(dir.path().join("last.pt2"), &bytes).unwrap();
        }
        let outcome = std::panic::catch_unwind(|| -> anyhow::Result<()> {
            let mut program = aotc::driver::load(&path, "fuzz", None)?;
            aotc::driver::emit(&mut program, aotc::driver::Stage::Bufferized, &options)?;
            Ok(())
        });
        let problem = match outcome {
            Ok(Ok(())) => {
                accepted += 1;
                if accepted % 40 == 0 {
                    ran += 1;
                    let out = aotc().arg("run").arg(&path).output().unwrap();
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    match out.status.code() {
                        Some(0) => None,
                        Some(1) if stderr.starts_with("error: ") && !stderr.contains("panicked") => None,
                        code => Some(format!("aotc run: exit {code:?}: {}", stderr.trim())),
                    }
                } else {
                    None
                }
            }
            Ok(Err(e)) => {
                rejected += 1;
                let text = format!("{e:#}");
                text.lines().any(|l| l.trim().is_empty()).then(|| format!("an empty error line in: {text}"))
            }
            Err(_) => Some("panicked".to_string()),
        };
        if let Some(problem) = problem {
            std::fs::create_dir_all(&failures).unwrap();
            let saved = failures.join(format!("seed{seed}_case{i}.pt2"));
            std::fs::write(&saved, &bytes).unwrap();
            problems.push(format!("case {i} ({name}; {what}): {problem} [saved as {}]", saved.display()));
        }
    }
    println!(
        "fuzz: {iterations} mutated archives (seed {seed}) in {:.1} s: {rejected} rejected with an error, {accepted} compiled \
         ({ran} of them run by aotc run), {} problems; peak memory {} MB",
        start.elapsed().as_secs_f64(),
        problems.len(),
        fuzz::peak_memory_mb()
    );
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
