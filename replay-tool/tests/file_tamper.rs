//! Replay file integrity: every byte of a file's prelude (magic, format, flags, lengths,
//! header and its checksum) and a sample of its body is covered, so flipping any one of
//! them makes `verify` refuse the file with exit 2 and a message saying why; format 1
//! files (no header checksum) stay readable and `verify` warns about them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{record, temp_path, Options};
use replay_tool::file;

fn tool(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_replay-tool"))
        .args(args)
        .output()
        .expect("runs")
}

/// Bytes before the body: magic 8, format 2, flags 2, header length 4, header, body
/// length 8, prelude checksum 8.
fn prelude_len(bytes: &[u8]) -> usize {
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    16 + header_len + 8 + 8
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Writes `bytes` with byte `i` XOR `mask` and runs `verify` on it.
fn verify_flipped(path: &PathBuf, bytes: &[u8], i: usize, mask: u8) -> (Option<i32>, String) {
    let mut b = bytes.to_vec();
    b[i] ^= mask;
    std::fs::write(path, &b).expect("write");
    let o = tool(&["verify", s(path)]);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn every_flipped_header_byte_and_sampled_body_bytes_fail_verify() {
    let (rec, _) = record(
        "tamper-file",
        &Options {
            ticks: 30,
            ..Options::default()
        },
    );
    let bytes = file::to_bytes(&rec, true).expect("encode");
    let prelude = prelude_len(&bytes);
    assert!(prelude > 100 && prelude < bytes.len());
    let good = temp_path("tamper-good.cnitreplay");
    std::fs::write(&good, &bytes).expect("write");
    let o = tool(&["verify", s(&good)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("warning"));

    // The library refuses every flip of every prelude byte, whatever the bit flipped.
    for i in 0..prelude {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= mask;
            match file::from_bytes(&b) {
                Err(replay_tool::Error::Format(_)) => {}
                other => panic!(
                    "byte {i} ^ {mask:#x} of the prelude: expected a format error, got {:?}",
                    other.map(|(h, _)| h)
                ),
            }
        }
    }

    // The binary: exit 2 and a message naming what is wrong.
    let bad = temp_path("tamper-bad.cnitreplay");
    let body_sample = (prelude..bytes.len()).step_by(97).chain([bytes.len() - 1]);
    for i in (0..prelude).chain(body_sample) {
        let (code, err) = verify_flipped(&bad, &bytes, i, 0x01);
        assert_eq!(code, Some(2), "byte {i}: {err}");
        assert!(
            err.contains("not a readable replay file"),
            "byte {i}: {err}"
        );
        let why = if i < 8 {
            "bad magic"
        } else if i < 10 {
            "file format"
        } else if i < prelude {
            // A checksum mismatch, or a length that no longer fits the file.
            "header"
        } else {
            "body"
        };
        assert!(err.contains(why), "byte {i}: expected {why:?} in {err}");
    }
    for p in [good, bad] {
        std::fs::remove_file(p).ok();
    }
}

#[test]
fn a_format_1_file_still_verifies_with_a_warning() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1_match.cnitreplay");
    let bytes = std::fs::read(&fixture).expect("fixture");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 1);
    let (header, _) = file::from_bytes(&bytes).expect("format 1 reads");
    assert!(!header.header_checked);
    let o = tool(&["verify", s(&fixture)]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("format 1 file: its header is not covered by a checksum"),
        "{out}"
    );
}
