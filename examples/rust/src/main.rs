//! Runs the compiled SimpleNet from Rust through aotc-runtime's safe API.
//!
//!   aotc examples/simple_net.pt2 -o build/libsimple.so
//!   AOTC_LIB_DIR=$PWD/build cargo run --manifest-path examples/rust/Cargo.toml -- [input.npy]

use aotc_runtime::safe::{Api, Model};

extern "C" {
    fn simple_api() -> *const Api;
}

/// The float32 payload of a version-1 .npy file.
fn read_npy_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{path} is not a .npy file");
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn main() {
    let mut model = unsafe { Model::new(simple_api()) }.unwrap_or_else(|e| panic!("create: {e}"));
    for input in &model.inputs {
        println!("input {}: {} {:?}", input.name, input.dtype, input.shape);
    }
    let x = match std::env::args().nth(1) {
        Some(path) => read_npy_f32(&path),
        None => (0..3 * 32 * 32).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect(),
    };
    let outputs = model.run_f32(&[&x]).unwrap_or_else(|e| panic!("run: {e}"));
    for (k, out) in outputs.iter().enumerate() {
        for (i, v) in out.iter().enumerate() {
            println!("output_{k}[{i}] = {v:.7}");
        }
    }
    // A wrong input size is an error, not undefined behaviour.
    match model.run_f32(&[&x[1..]]) {
        Err(e) => println!("wrong size -> {e}"),
        Ok(_) => panic!("a short input was accepted"),
    }
}
