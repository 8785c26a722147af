//! The `protozoa` binary as a user runs it: its JSON summary, its picture, determinism across
//! worker counts, and one `error:` line with exit code 2 for every kind of bad input.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use serde_json::Value;

const GENESIS: &str = r#"{"height": 0,
 "hash": "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
 "nonce": 2083236893, "time": 1231006505,
 "merkleroot": "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
 "difficulty": 1, "version": 1,
 "previousblockhash": "0000000000000000000000000000000000000000000000000000000000000000",
 "bits": "1d00ffff"}"#;

/// A fresh path in the system's temporary folder.
fn temp_path(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("protozoa-cli-{}-{n}-{name}", std::process::id()))
}

fn protozoa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_protozoa"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs with a picture in the temporary folder and `--json`; returns the parsed summary.
fn summary(args: &[&str]) -> Value {
    let png = temp_path("scene.png");
    let png_arg = png.to_string_lossy().into_owned();
    let mut all = vec!["--json", "--png", png_arg.as_str()];
    all.extend_from_slice(args);
    let output = protozoa(&all);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_file(&png);
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON object")
}

/// Asserts the run failed with exit code 2 and one `error:` line containing `needle`.
fn assert_bad_input(args: &[&str], needle: &str) {
    let png = temp_path("bad.png");
    let png_arg = png.to_string_lossy().into_owned();
    let mut all = args.to_vec();
    if !args.contains(&"--png") {
        all.extend(["--png", png_arg.as_str()]);
    }
    let output = protozoa(&all);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line expected, got {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: expected {needle:?} in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    let _ = std::fs::remove_file(&png);
}

fn write_temp(name: &str, text: &str) -> PathBuf {
    let path = temp_path(name);
    std::fs::write(&path, text).expect("the temporary folder is writable");
    path
}

#[test]
fn json_summary_has_every_documented_field() {
    let json = summary(&["--creatures", "3", "--frames", "4", "--workers", "2"]);
    assert_eq!(json["creatures"], 3);
    assert_eq!(json["particles"], 1500);
    assert_eq!(json["frames"], 4);
    assert_eq!(json["workers"], 2);
    assert_eq!(json["backend"], "thread");
    assert_eq!(json["tasks"], 12, "one task per creature per frame");
    let checksum = json["checksum"].as_str().expect("checksum is a string");
    assert!(checksum.len() == 16 && checksum.chars().all(|c| c.is_ascii_hexdigit()));
    for key in ["p50", "p99", "max"] {
        assert!(json["frame_ms"][key].as_f64().is_some(), "frame_ms.{key}");
    }
    assert!(json["wall_s"].as_f64().is_some());
}

#[test]
fn picture_is_written_as_png() {
    let png = temp_path("picture.png");
    let png_arg = png.to_string_lossy().into_owned();
    let output = protozoa(&["--creatures", "2", "--frames", "2", "--png", &png_arg]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&png).expect("the picture exists");
    assert_eq!(&bytes[1..4], b"PNG");
    assert!(String::from_utf8_lossy(&output.stdout).contains("checksum"));
    let _ = std::fs::remove_file(&png);
}

#[test]
fn one_two_and_three_workers_give_the_same_checksum() {
    let checksums: Vec<Value> = ["1", "2", "3"]
        .iter()
        .map(|w| {
            summary(&["--creatures", "5", "--frames", "6", "--workers", w])["checksum"].clone()
        })
        .collect();
    assert_eq!(checksums[0], checksums[1]);
    assert_eq!(checksums[1], checksums[2]);
}

#[test]
fn process_backend_gives_the_same_checksum_as_thread_backend() {
    let run = |backend| {
        let args = [
            "--creatures",
            "5",
            "--frames",
            "6",
            "--workers",
            "2",
            "--backend",
            backend,
        ];
        summary(&args)
    };
    let (thread, process) = (run("thread"), run("process"));
    assert_eq!(thread["backend"], "thread");
    assert_eq!(process["backend"], "process");
    assert_eq!(thread["checksum"], process["checksum"]);
}

#[test]
fn simulate_subcommand_and_bare_command_agree() {
    let bare = summary(&["--block", "0", "--frames", "3"]);
    let png = temp_path("sub.png");
    let png_arg = png.to_string_lossy().into_owned();
    let args = [
        "simulate", "--block", "0", "--frames", "3", "--json", "--png", &png_arg,
    ];
    let output = protozoa(&args);
    let sub: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(bare["checksum"], sub["checksum"]);
    assert_eq!(sub["creatures"], 1);
    let _ = std::fs::remove_file(&png);
}

#[test]
fn block_file_in_blockinfo_shape_is_simulated() {
    let file = write_temp("genesis.json", GENESIS);
    let json = summary(&["--block-file", &file.to_string_lossy(), "--frames", "2"]);
    assert_eq!(json["creatures"], 1);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn blocks_are_fetched_from_the_api() {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("a loopback port");
    let port = server.server_addr().to_ip().expect("an IP address").port();
    thread::spawn(move || {
        for request in server.incoming_requests() {
            let (status, body) = match request.url() {
                "/r/blockinfo/0" => (200, GENESIS),
                _ => (404, "no such block"),
            };
            let _ =
                request.respond(tiny_http::Response::from_string(body).with_status_code(status));
        }
    });
    let api = format!("http://127.0.0.1:{port}");
    let json = summary(&["--api", &api, "--block", "0", "--frames", "2"]);
    assert_eq!(json["creatures"], 1);
    assert!(
        json["tasks"].as_u64().is_some_and(|t| t >= 2),
        "at least the two frames"
    );
}

#[test]
fn unknown_height_is_refused() {
    assert_bad_input(&["--block", "5"], "unknown block height 5");
}

#[test]
fn malformed_block_file_is_refused() {
    let file = write_temp("malformed.json", "{\"height\": 1, \"hash\": ");
    assert_bad_input(
        &["--block-file", &file.to_string_lossy()],
        "not a blockinfo record",
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn block_file_with_a_bad_field_names_the_field() {
    let file = write_temp("field.json", &GENESIS.replace("2083236893", "\"lots\""));
    assert_bad_input(&["--block-file", &file.to_string_lossy()], "field `nonce`");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn tampered_block_file_names_the_failed_check() {
    let file = write_temp(
        "tampered.json",
        &GENESIS.replace("1231006505", "1231006506"),
    );
    assert_bad_input(
        &["--block-file", &file.to_string_lossy()],
        "hash check failed",
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn missing_block_file_is_refused() {
    let file = temp_path("absent.json");
    assert_bad_input(
        &["--block-file", &file.to_string_lossy()],
        "cannot read block file",
    );
}

#[test]
fn unreachable_api_is_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let api = format!("http://127.0.0.1:{port}");
    assert_bad_input(&["--api", &api, "--block", "0"], "cannot reach");
}

#[test]
fn zero_workers_is_refused() {
    assert_bad_input(&["--workers", "0"], "--workers");
}

#[test]
fn zero_frames_is_refused() {
    assert_bad_input(&["--frames", "0"], "--frames");
}

#[test]
fn unwritable_picture_path_is_refused() {
    let png = std::env::temp_dir()
        .join("protozoa-no-such-folder")
        .join("scene.png");
    assert_bad_input(&["--png", &png.to_string_lossy()], "cannot write picture");
}

#[test]
fn unparsable_option_is_one_error_line() {
    assert_bad_input(&["--frames", "many"], "invalid value");
}

#[test]
fn tip_below_a_block_is_refused() {
    assert_bad_input(&["--block", "2016", "--tip", "100"], "above the tip");
}
