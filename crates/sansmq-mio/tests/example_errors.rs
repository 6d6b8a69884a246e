//! The quickstart example, failing, prints its error as one readable line (`Display`), not the
//! Debug dump that `fn main() -> Result<..>` prints.

use std::path::PathBuf;
use std::process::Command;

/// The built `quickstart` example, next to this test's binary (`target/<profile>/examples`),
/// built first if this run did not build it (`cargo test --test example_errors`).
fn quickstart() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let example = profile_dir
        .join("examples")
        .join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    if !example.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "sansmq-mio", "--example", "quickstart"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the quickstart example failed");
    }
    example
}

#[test]
fn a_failing_example_prints_one_display_line() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    for (uri, says) in [
        (
            format!("tcp://127.0.0.1:{closed}"),
            "connecting to tcp://127.0.0.1:",
        ),
        (
            "tcp://user:S3CRET@broker:1883".to_owned(),
            "user:***@broker",
        ),
        ("tcp://h:1883:1884".to_owned(), "more than one ':'"),
    ] {
        let output = Command::new(quickstart())
            .arg(&uri)
            .output()
            .expect("the example runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{uri}: {stderr}");
        let lines: Vec<_> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{uri}: {stderr}");
        let line = lines[0];
        assert!(line.starts_with("quickstart: error: "), "{line}");
        assert!(line.contains(says), "{line}");
        // Debug would show the variant and its fields: `Io { context: ..`, `InvalidUri { uri:`.
        assert!(!line.contains(" { ") && !line.contains("S3CRET"), "{line}");
    }
}
