//! A panicking module still speaks the protocol: one JSON object, failed, secrets masked. It is
//! checked on the debug build (panic=unwind) and on the release profile the collection ships
//! (panic=abort, LTO, crt-static): the hook runs before the abort there too.
// See: issue 8 item 20 (the old example panicked on an index before reaching the secret, and
// only the unwind build was run).
use std::path::{Path, PathBuf};
use std::process::Command;

fn debug_example() -> PathBuf {
    // `cargo test` (unfiltered, as `make test` runs it) builds examples next to the test
    // binaries: target/<profile>/examples/. Build it explicitly so a filtered run works too.
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "-q",
            "-p",
            "ansible_module",
            "--example",
            "panicking_module",
        ])
        .status()
        .expect("cargo build");
    assert!(status.success());
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|p| p.join("examples").join("panicking_module"))
        .expect("examples dir")
}

/// The example built exactly as `make build` builds the shipped modules, in a target dir of its
/// own (no lock contention with the test build).
fn release_example() -> PathBuf {
    let target_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/panic-abort");
    let triple = "x86_64-unknown-linux-gnu";
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "--release", "-p", "ansible_module"])
        .args(["--example", "panicking_module", "--target", triple])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .status()
        .expect("cargo build --release");
    assert!(status.success());
    target_dir
        .join(triple)
        .join("release/examples/panicking_module")
}

/// Whether a 64-bit little-endian ELF file has a PT_INTERP program header (a dynamic loader).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().expect("8 bytes"));
    assert_eq!(&elf[..4], b"\x7fELF");
    let phoff = usize::try_from(u64_at(0x20)).expect("phoff");
    let (phentsize, phnum) = (usize::from(u16_at(0x36)), usize::from(u16_at(0x38)));
    (0..phnum).any(|i| u32_at(phoff + i * phentsize) == 3)
}

fn assert_masked_failure(exe: &Path) {
    let dir = tempfile::tempdir().expect("tmp");
    let args = dir.path().join("args");
    std::fs::write(
        &args,
        r#"{"login_password": "panic-secret-42", "found": "runtime-secret-7", "_ansible_check_mode": false}"#,
    )
    .expect("write");
    let out = Command::new(exe).arg(&args).output().expect("run example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    assert_eq!(v["failed"], serde_json::json!(true));
    assert_eq!(v["changed"], serde_json::json!(false));
    let msg = v["msg"].as_str().unwrap_or("");
    assert!(
        msg.starts_with(
            "internal error in module redis_panics: boom with password ******** and found secret ********"
        ),
        "{msg}"
    );
    assert!(!stdout.contains("panic-secret-42"), "{stdout}");
    assert!(!stdout.contains("runtime-secret-7"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "{:?}", out.status);
}

#[test]
fn panic_prints_failed_json_with_secrets_masked() {
    assert_masked_failure(&debug_example());
}

#[test]
fn panic_abort_release_build_prints_failed_json_with_secrets_masked() {
    let exe = release_example();
    // Prove this really is the shipped kind of binary: static, and built with panic=abort.
    let bytes = std::fs::read(&exe).expect("read");
    assert!(
        !has_interpreter(&bytes),
        "{} is dynamically linked",
        exe.display()
    );
    assert_masked_failure(&exe);
}

#[test]
fn missing_args_file_is_a_json_failure() {
    let out = Command::new(debug_example())
        .arg("/nonexistent/args")
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["failed"], serde_json::json!(true));
    assert!(v["msg"]
        .as_str()
        .is_some_and(|m| m.contains("/nonexistent/args")));
}

#[test]
fn args_can_come_from_standard_input() {
    use std::io::Write;
    // The fast path of the action plugin: no args file on the managed host.
    let mut child = Command::new(debug_example())
        .arg("--ansible-args-stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"login_password": "stdin-secret-1", "found": "x"}"#)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // The example panics by design: reaching the panic proves the args were read and parsed.
    let msg = v["msg"].as_str().unwrap_or("");
    assert!(msg.contains("boom with password ********"), "{msg}");
    let out = Command::new(debug_example())
        .arg("--ansible-args-stdin")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["msg"]
        .as_str()
        .is_some_and(|m| m.contains("<standard input>") && m.contains("not valid JSON")));
}
