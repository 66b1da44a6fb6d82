//! Build script: make sure the LiteRT runtime library is there, and that binaries can find it.
//!
//! litert-sys (the FFI crate) links `libLiteRt.so` from `LITERT_LIB_DIR`, which
//! `.cargo/config.toml` points at `third_party/litert/x86_64` (filled by
//! `scripts/fetch-litert.sh`). Two things litert-sys does not do for us:
//!
//! * **A clear message when the library is missing or for the wrong CPU.** Without this check
//!   the failure is a linker error ("unable to find library -lLiteRt" or "file in wrong
//!   format") long after this point.
//! * **An rpath on our own binaries.** A dependency's link arguments do not reach the final
//!   binaries, so we add two run paths here:
//!   - `$ORIGIN`: the installed layout on the Pi puts `libLiteRt.so` beside the binary;
//!   - the absolute library directory: `cargo test`/`cargo run` binaries under `target/` find
//!     the library without `LD_LIBRARY_PATH`.
use std::env;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::exit;

const LIB_NAME: &str = "libLiteRt.so";

fn fail(msg: &str) -> ! {
    eprintln!("\nerror: {msg}\n");
    println!("cargo:warning={}", msg.replace('\n', " "));
    exit(1);
}

/// ELF `e_machine` of a shared library, or a sentence saying why it could not be read.
fn elf_machine(path: &Path) -> Result<u16, String> {
    let mut header = [0u8; 20];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if &header[..4] != b"\x7fELF" {
        return Err(format!("{} is not an ELF shared library", path.display()));
    }
    // Byte 5 is the data encoding: 1 = little endian, 2 = big endian.
    let raw = [header[18], header[19]];
    Ok(if header[5] == 2 {
        u16::from_be_bytes(raw)
    } else {
        u16::from_le_bytes(raw)
    })
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LITERT_LIB_DIR");

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "linux" {
        // Only Linux (developer machines, CI, the Pi) is set up; elsewhere litert-sys decides.
        return;
    }
    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let target = env::var("TARGET").unwrap_or_default();
    let fetch = format!("scripts/fetch-litert.sh --arch {target_arch}");

    // litert-sys reports the directory it linked from (`links = "LiteRt"` + `cargo:lib_dir`);
    // fall back to the variable it reads.
    let lib_dir = env::var_os("DEP_LITERT_LIB_DIR")
        .or_else(|| env::var_os("LITERT_LIB_DIR"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            fail(&format!(
                "LITERT_LIB_DIR is not set, so the LiteRT runtime cannot be found.\n\
                 Run `{fetch}` and build from the repository (its .cargo/config.toml sets it), \
                 or set LITERT_LIB_DIR to the directory holding {LIB_NAME} for {target}."
            ))
        });
    let lib = lib_dir.join(LIB_NAME);
    println!("cargo:rerun-if-changed={}", lib.display());

    if !lib.is_file() {
        fail(&format!(
            "{} is missing: the LiteRT runtime has not been fetched.\n\
             Run `{fetch}` (downloads the pinned ai-edge-litert 2.1.4 wheel from PyPI and \
             extracts {LIB_NAME}), then build again. For another target set LITERT_LIB_DIR to \
             third_party/litert/<arch> (see .cargo/config.toml).",
            lib.display()
        ));
    }

    let expected = match target_arch.as_str() {
        "x86_64" => Some((62u16, "x86_64")),
        "aarch64" => Some((183u16, "aarch64")),
        _ => None,
    };
    match (elf_machine(&lib), expected) {
        (Err(why), _) => fail(&format!("{why}. Run `{fetch}` to replace it.")),
        (Ok(found), Some((want, name))) if found != want => fail(&format!(
            "{} is not an {name} library (ELF machine {found}, want {want}) but the target is \
             {target}.\nRun `{fetch}` and set LITERT_LIB_DIR=$PWD/third_party/litert/{name} \
             (.cargo/config.toml defaults to the x86_64 one).",
            lib.display()
        )),
        _ => {}
    }

    // `$ORIGIN` first so an installed library beside the binary wins over the build tree.
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    // A package (scripts/build-deb.sh) names where it installs the library instead of the
    // build tree, which does not exist on the target and which lintian rejects.
    println!("cargo:rerun-if-env-changed=CHATTERBOX_INSTALL_RPATH");
    match env::var("CHATTERBOX_INSTALL_RPATH") {
        Ok(installed) if !installed.is_empty() => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{installed}")
        }
        _ => println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display()),
    }
}
