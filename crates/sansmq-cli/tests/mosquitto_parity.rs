//! The parity table: the same arguments through `mosquitto_pub`/`mosquitto_sub`/`mosquitto_rr`
//! and through `sansmq pub`/`sub`/`rr` against one mosquitto, comparing exit codes, stdout bytes, what a second
//! subscriber received (topic, payload, QoS, retain, in order) and what stays retained. Stderr
//! texts differ by design (ours say what to do); only whether stderr is empty is compared.
//!
//! A row is `Same` or `Differs(why)`, a deliberate difference; a `Differs` row that turns out the
//! same fails too, so that it gets promoted. The whole table is printed; `PARITY_TABLE=path`
//! also writes the Markdown summary for the README there.

#[path = "common/parity/mod.rs"]
mod parity;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use sansmq_e2e::{Mosquitto, Socks5Proxy, free_port};

use parity::report::{self, Results, Verdict};
use parity::run::{self, Places, Side};

/// Rows run at once: the tools mostly wait on the network, but the machine has two busy cores.
const WORKERS: usize = 6;

#[test]
fn sansmq_pub_and_sub_behave_as_mosquitto_pub_and_sub() {
    let started = Instant::now();
    let scratch = tempfile::Builder::new()
        .prefix("sansmq-parity-")
        .tempdir()
        .expect("a scratch directory");
    let dir = scratch.path();
    let sock = dir.join("mosquitto.sock");
    let main = Mosquitto::builder()
        .tls()
        .config_line(format!("listener 0 {}", sock.display()))
        .start();
    let auth = Mosquitto::builder().user("alice", "secret").start();
    let pki = main.pki().expect("the main broker has TLS");

    let capath = dir.join("capath");
    std::fs::create_dir(&capath).expect("capath directory");
    std::fs::write(capath.join("ca.pem"), pki.ca_pem()).expect("capath CA");
    // OpenSSL (mosquitto) finds CA files in a directory by their subject hash links.
    let rehash = Command::new("openssl").arg("rehash").arg(&capath).status();
    assert!(
        rehash.is_ok_and(|status| status.success()),
        "openssl rehash {} failed",
        capath.display()
    );
    let file = dir.join("message.bin");
    std::fs::write(&file, b"file\0body\r\nno newline").expect("message file");
    let bigfile = dir.join("big.bin");
    std::fs::write(&bigfile, vec![b'f'; 2 * 1024 * 1024]).expect("big message file");
    let socks = Socks5Proxy::start();
    let path = |p: &std::path::Path| p.display().to_string();

    let places = Places {
        values: vec![
            ("{port}", main.port().to_string()),
            ("{tls}", main.tls_port().to_string()),
            ("{auth}", auth.port().to_string()),
            ("{sock}", path(&sock)),
            ("{ca}", path(pki.ca_pem_path())),
            ("{wrong_ca}", path(pki.wrong_ca_pem_path())),
            ("{capath}", path(&capath)),
            ("{cert}", path(pki.client_cert_pem_path())),
            ("{key}", path(pki.client_key_pem_path())),
            ("{silent}", parity::silent_listener().to_string()),
            ("{closed}", free_port().to_string()),
            ("{socks}", socks.addr().port().to_string()),
            ("{file}", path(&file)),
            ("{bigfile}", path(&bigfile)),
            ("{dir}", path(dir)),
        ],
        main_port: main.port(),
        main_log: main.log_path().to_path_buf(),
        auth_port: auth.port(),
        auth_log: auth.log_path().to_path_buf(),
        auth_login: ("alice".to_owned(), "secret".to_owned()),
        sansmq: PathBuf::from(env!("CARGO_BIN_EXE_sansmq")),
    };

    let rows = parity::rows();
    let results: Mutex<Vec<Option<Results>>> = Mutex::new(vec![None; rows.len()]);
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(row) = rows.get(index) else { break };
                    if row.ignored.is_some() {
                        continue;
                    }
                    // One after the other, on the same topic: the cleanup between them leaves
                    // the broker as the first found it.
                    let mosquitto = run::run(row, index, Side::Mosquitto, &places);
                    let sansmq = run::run(row, index, Side::Sansmq, &places);
                    results.lock().unwrap_or_else(|e| e.into_inner())[index] =
                        Some(Results { mosquitto, sansmq });
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());

    println!("{}", report::table(&rows, &results));
    let markdown = report::markdown(&rows, &results);
    println!("{markdown}");
    if let Some(path) = std::env::var_os("PARITY_TABLE") {
        std::fs::write(&path, &markdown).expect("writing PARITY_TABLE");
    }
    println!(
        "{} rows in {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );

    let failures: Vec<String> = rows
        .iter()
        .zip(&results)
        .enumerate()
        .filter_map(|(index, (row, result))| {
            let verdict = Verdict::of(row, result.as_ref());
            let result = result.as_ref()?;
            verdict.is_failure().then(|| {
                let (m, s) = (&result.mosquitto.0, &result.sansmq.0);
                let why = if verdict == Verdict::Promote {
                    "marked Differs but behaves the same: make it Same".to_owned()
                } else {
                    report::differences(m, s).join("; ")
                };
                format!("#{index:03} {} ({}): {why}", row.name, report::command(row))
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows are not as the table says:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
