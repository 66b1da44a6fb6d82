//! No code path in `src/` spawns a shell: file names must never pass through `sh -c`.
//! A grep over the sources, so a new `Command::new("sh")` fails CI at once.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines that would start a shell, with file:line.
fn shell_spawns(text: &str, file: &Path) -> Vec<String> {
    const SHELLS: [&str; 6] = ["sh", "bash", "dash", "zsh", "/bin/sh", "/bin/bash"];
    let mut hits = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let spawns_shell = SHELLS
            .iter()
            .any(|s| compact.contains(&format!("Command::new(\"{s}\")")));
        let dash_c = compact.contains(".arg(\"-c\")") || compact.contains("\"-c\",");
        let system = compact.contains("libc::system(") || compact.contains("popen(");
        if spawns_shell || dash_c || system {
            hits.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
        }
    }
    hits
}

#[test]
fn the_detector_catches_the_patterns_it_looks_for() {
    let f = Path::new("x.rs");
    for bad in [
        "let c = Command::new(\"sh\");",
        "std::process::Command::new( \"bash\" ).arg(\"-c\")",
        "Command::new(\"/bin/sh\")",
        "unsafe { libc::system(cmd) }",
        "cmd.args([\"-c\", line])",
    ] {
        assert!(!shell_spawns(bad, f).is_empty(), "missed: {bad}");
    }
    for fine in [
        "Command::new(\"arecord\").arg(path)",
        "// Command::new(\"sh\") is forbidden",
        "let shell = \"bash\";",
    ] {
        assert!(shell_spawns(fine, f).is_empty(), "false alarm: {fine}");
    }
}

#[test]
fn no_source_file_spawns_a_shell() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(
        files.len() > 20,
        "found only {} files under src/",
        files.len()
    );
    let hits: Vec<String> = files
        .iter()
        .flat_map(|f| shell_spawns(&std::fs::read_to_string(f).unwrap(), f))
        .collect();
    assert!(
        hits.is_empty(),
        "shell spawned in src/:\n{}",
        hits.join("\n")
    );
}
