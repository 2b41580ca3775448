//! Helpers for aotc's benchmarks: compile an archive with the aotc binary
//! and load the library it writes.

use aotc_runtime::safe::{Api, Model};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The aotc binary: `AOTC_BIN`, or the release build in the target dir.
pub fn aotc_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("AOTC_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo().join("target"));
    target.join("release").join("aotc")
}

/// A compiled model, loaded; the library stays loaded as long as this lives.
pub struct Loaded {
    pub model: Model,
    _library: libloading::Library,
    _dir: PathBuf,
}

/// Compiles `archive` into a shared library with symbol prefix `prefix`
/// (in `dir`) and loads it.
pub fn compile_and_load(archive: &Path, prefix: &str, dir: &Path) -> Loaded {
    let lib = dir.join(format!("lib{prefix}.so"));
    let status = Command::new(aotc_bin()).arg(archive).arg("-o").arg(&lib).status().expect("run aotc (build it with cargo build --release)");
    assert!(status.success(), "aotc failed on {}", archive.display());
    unsafe {
        let library = libloading::Library::new(&lib).expect("load the compiled library");
        let api: libloading::Symbol<unsafe extern "C" fn() -> *const Api> =
            library.get(format!("{prefix}_api").as_bytes()).expect("the library exports <prefix>_api");
        let model = Model::new(api()).expect("create the model");
        Loaded { model, _library: library, _dir: dir.to_path_buf() }
    }
}
