//! End-to-end tests: compiled programs against PyTorch's outputs.
//!
//! They read the fixtures written by `tools/export_fixtures.py` from
//! `AOTC_FIXTURES` (tools/test.sh sets it). Tolerance: max abs error <= 1e-5
//! for SimpleNet in float32.

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
