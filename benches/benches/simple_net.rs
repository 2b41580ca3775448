//! Criterion benchmark: SimpleNet latency (batch 1, one thread) of the
//! library aotc generates. `benches/compare.py` runs PyTorch eager beside it.
//!
//!   cargo build --release && cargo bench -p aotc-benches

use criterion::{criterion_group, criterion_main, Criterion};

fn simple_net(c: &mut Criterion) {
    let dir = tempfile_dir();
    let mut loaded = aotc_benches::compile_and_load(&aotc_benches::repo().join("examples/simple_net.pt2"), "bench_simple", &dir);
    // The same input pattern as benches/harness.c: ordinary floats in [-0.5, 0.5).
    let input: Vec<u8> = (0..loaded.model.inputs[0].bytes / 4)
        .flat_map(|k| ((k * 37 % 61) as f32 / 61.0 - 0.5).to_le_bytes())
        .collect();
    let mut out0 = vec![0u8; loaded.model.outputs[0].bytes];
    let mut out1 = vec![0u8; loaded.model.outputs[1].bytes];
    c.bench_function("simple_net/aotc", |b| {
        b.iter(|| loaded.model.run_bytes(&[&input], &mut [&mut out0, &mut out1]).unwrap())
    });
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("aotc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

criterion_group!(benches, simple_net);
criterion_main!(benches);
