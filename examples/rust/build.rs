//! Links the library aotc generated: `AOTC_LIB_DIR` holds `libsimple.so`.
fn main() {
    println!("cargo:rerun-if-env-changed=AOTC_LIB_DIR");
    let dir = std::env::var("AOTC_LIB_DIR").expect("set AOTC_LIB_DIR to the folder holding libsimple.so");
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-lib=dylib=simple");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
}
