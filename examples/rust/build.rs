//! Links libnkclass (the shared library) from where it is installed: under
//! NKCLASS_PREFIX when set (the `cmake --install --prefix` directory), else
//! where pkg-config's nkclass.pc says. The run-time search path is set too,
//! so the program runs without LD_LIBRARY_PATH.
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=NKCLASS_PREFIX");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let libdir = match env::var_os("NKCLASS_PREFIX") {
        Some(prefix) => library_dir_under(Path::new(&prefix)),
        None => library_dir_from_pkg_config(),
    };
    println!("cargo:rustc-link-search=native={}", libdir.display());
    println!("cargo:rustc-link-lib=dylib=nkclass");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", libdir.display());
}

/// The lib* directory under `prefix` that holds libnkclass (lib, lib64, or
/// a multiarch lib/<triplet>, as GNUInstallDirs chooses).
fn library_dir_under(prefix: &Path) -> PathBuf {
    let mut candidates = Vec::new();
    if let Ok(entries) = prefix.read_dir() {
        for entry in entries.flatten() {
            let dir = entry.path();
            if entry.file_name().to_string_lossy().starts_with("lib") {
                candidates.push(dir.clone());
                if let Ok(inner) = dir.read_dir() {
                    candidates.extend(inner.flatten().map(|e| e.path()));
                }
            }
        }
    }
    candidates.sort();
    match candidates.into_iter().find(|dir| has_library(dir)) {
        Some(dir) => dir,
        None => panic!(
            "NKCLASS_PREFIX={}: no libnkclass.so under its lib directories \
             (install it with `cmake --install BUILD --prefix {}`)",
            prefix.display(),
            prefix.display()
        ),
    }
}

fn has_library(dir: &Path) -> bool {
    dir.join("libnkclass.so").exists() || dir.join("libnkclass.dylib").exists()
}

fn library_dir_from_pkg_config() -> PathBuf {
    let output = Command::new("pkg-config")
        .args(["--variable=libdir", "nkclass"])
        .output()
        .unwrap_or_else(|e| panic!("running pkg-config: {e} (or set NKCLASS_PREFIX)"));
    if !output.status.success() {
        panic!(
            "pkg-config does not know nkclass: {} (add the installed lib/pkgconfig \
             directory to PKG_CONFIG_PATH, or set NKCLASS_PREFIX)",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !has_library(&dir) {
        panic!(
            "pkg-config names {} for nkclass, which holds no libnkclass.so",
            dir.display()
        );
    }
    dir
}
