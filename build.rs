//! Generates include/contextvars.h from src/ with cbindgen (written only
//! when its text changes, so builds stay incremental) and sets the shared
//! library's soname.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let major: u32 = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap().parse().unwrap();
    let minor: u32 = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap().parse().unwrap();
    let patch: u32 = std::env::var("CARGO_PKG_VERSION_PATCH").unwrap().parse().unwrap();

    // The ABI changes with the major version, or with the minor one before 1.0.
    let abi = if major > 0 { format!("{major}") } else { format!("0.{minor}") };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcontextvars.so.{abi}");
    // Never unmapped by dlclose: threads that used the library still run its
    // thread-exit hook (a pthread key destructor) when they exit.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");

    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let hand_written = config.after_includes.take().unwrap_or_default();
    config.after_includes = Some(format!(
        "\n/* The library's version, from Cargo.toml. */\n\
         #define CONTEXTVARS_VERSION \"{version}\"\n\
         #define CONTEXTVARS_VERSION_MAJOR {major}\n\
         #define CONTEXTVARS_VERSION_MINOR {minor}\n\
         #define CONTEXTVARS_VERSION_PATCH {patch}\n{hand_written}"
    ));
    let header = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate include/contextvars.h");
    let mut text = Vec::new();
    header.write(&mut text);
    let path = dir.join("include").join("contextvars.h");
    if std::fs::read(&path).ok().as_deref() != Some(&text[..]) {
        std::fs::create_dir_all(path.parent().unwrap()).expect("create include/");
        std::fs::write(&path, &text).expect("write include/contextvars.h");
    }
}
