//! A panicking module still speaks the protocol: one JSON object, failed, secret masked.
use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // `cargo test` (unfiltered, as `make test` runs it) builds examples next to the test
    // binaries: target/<profile>/examples/. `cargo test --test panic_hook` alone does not.
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|p| p.join("examples").join(name))
        .expect("examples dir")
}

#[test]
fn panic_prints_failed_json_with_secret_masked() {
    let dir = tempfile::tempdir().expect("tmp");
    let args = dir.path().join("args");
    std::fs::write(
        &args,
        r#"{"login_password": "panic-secret-42", "_ansible_check_mode": false}"#,
    )
    .expect("write");
    let out = Command::new(example("panicking_module"))
        .arg(&args)
        .output()
        .expect("run example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    assert_eq!(v["failed"], serde_json::json!(true));
    assert_eq!(v["changed"], serde_json::json!(false));
    let msg = v["msg"].as_str().unwrap_or("");
    assert!(
        msg.starts_with("internal error in module redis_panics: index out of bounds"),
        "{msg}"
    );
    assert!(!stdout.contains("panic-secret-42"), "{stdout}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn missing_args_file_is_a_json_failure() {
    let out = Command::new(example("panicking_module"))
        .arg("/nonexistent/args")
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["failed"], serde_json::json!(true));
    assert!(v["msg"]
        .as_str()
        .is_some_and(|m| m.contains("/nonexistent/args")));
}
