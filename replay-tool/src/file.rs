//! The replay file: one self-describing file per match.
//!
//! Layout of format 2 (integers little-endian):
//!
//! ```text
//! magic        8 bytes  "CNITRPLY"
//! format       u16      FORMAT_VERSION
//! flags        u16      bit 0: body is zstd-compressed
//! header_len   u32      then that many bytes: FileHeader, msgpack with named fields
//! body_len     u64
//! prelude_xxh3 u64      xxh3 of every byte above (magic to body_len)
//! body                  body_len bytes: Streams, msgpack with named fields
//! ```
//!
//! The header stays uncompressed so `info`-style readers (and the gateway's replay list)
//! can read it without touching the body; its checksum covers it with the magic, the
//! version, the flags and both lengths, and the header holds the body's checksum, so a
//! changed byte anywhere in the file is refused. Entries are stored as the services wrote
//! them, so an old schema version in the log is still old in the file and is upcast on
//! read.
//!
//! Format 1 (the same without `prelude_xxh3`) is still read: its body is checked, its
//! header is not, which [`FileHeader::header_checked`] reports and `verify` warns about.

use std::io::{Read, Write};
use std::path::Path;

use events::{MatchCreated, MatchEnded, MatchId};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::recording::{Recording, Streams};

/// First bytes of every replay file.
pub const MAGIC: &[u8; 8] = b"CNITRPLY";

/// The file format this build writes. 2 added the prelude checksum.
pub const FORMAT_VERSION: u16 = 2;

/// The oldest format this build reads: format 1 files (no prelude checksum) stay
/// readable, their header unchecked.
pub const OLDEST_READABLE_FORMAT: u16 = 1;

const FLAG_ZSTD: u16 = 1;

/// Largest header accepted: a header is a few kilobytes; more means a corrupt file.
pub const MAX_HEADER: u32 = 1 << 20;

/// zstd level for compressed exports: fast and already ~10× on these logs.
pub const ZSTD_LEVEL: i32 = 3;

/// What a file says about itself before its body is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    pub format: u16,
    /// The version of the build that exported the file (the workspace version, which the
    /// engine shares).
    pub engine_version: String,
    /// The rules hash the match ran with (as announced at tick 0; else the rules of the
    /// exporting build).
    pub rules_hash: u64,
    pub match_id: MatchId,
    pub setup: MatchCreated,
    pub ended: Option<MatchEnded>,
    pub ticks: u64,
    pub entries: EntryCounts,
    pub exported_ms: u64,
    pub compressed: bool,
    /// xxh3 of the uncompressed body, so a damaged file is refused rather than replayed.
    pub body_xxh3: u64,
    /// Whether the file's header was covered by a checksum (format 2 on); set on read,
    /// never stored.
    #[serde(skip, default = "checked")]
    pub header_checked: bool,
}

fn checked() -> bool {
    true
}

/// Entries per stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryCounts {
    pub matches: u64,
    pub cmd: u64,
    pub tick: u64,
    pub eco: u64,
    pub snap: u64,
    /// The engine's seek states (0 in files from before it kept them).
    #[serde(default)]
    pub seek: u64,
}

impl EntryCounts {
    pub fn of(s: &Streams) -> Self {
        Self {
            matches: s.matches.len() as u64,
            cmd: s.cmd.len() as u64,
            tick: s.tick.len() as u64,
            eco: s.eco.len() as u64,
            snap: s.snap.len() as u64,
            seek: s.seek.len() as u64,
        }
    }
}

/// Encodes a recording as a replay file.
pub fn to_bytes(rec: &Recording, compress: bool) -> Result<Vec<u8>> {
    let body = rmp_serde::to_vec_named(&rec.streams).map_err(|e| Error::Encode(e.to_string()))?;
    let header = FileHeader {
        format: FORMAT_VERSION,
        engine_version: env!("CARGO_PKG_VERSION").to_string(),
        rules_hash: rec
            .recorded_rules_hash()
            .unwrap_or_else(|| engine::Rules::standard().hash()),
        match_id: rec.match_id.clone(),
        setup: rec.log.setup.clone(),
        ended: rec.log.ended.clone(),
        ticks: rec.tick_count(),
        entries: EntryCounts::of(&rec.streams),
        exported_ms: events::now_ms(),
        compressed: compress,
        body_xxh3: xxhash_rust::xxh3::xxh3_64(&body),
        header_checked: true,
    };
    let header = rmp_serde::to_vec_named(&header).map_err(|e| Error::Encode(e.to_string()))?;
    let body = if compress {
        zstd::bulk::compress(&body, ZSTD_LEVEL).map_err(|e| Error::Encode(e.to_string()))?
    } else {
        body
    };
    let mut out = Vec::with_capacity(8 + 2 + 2 + 4 + header.len() + 8 + 8 + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(if compress { FLAG_ZSTD } else { 0 }).to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let prelude = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&prelude.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// A cursor over untrusted bytes: every read is bounds-checked.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::Format(format!("truncated {what}")));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }
}

/// What precedes the body: the header, the flags, the body's length, and a cursor at the
/// body.
struct Prelude<'a> {
    header: FileHeader,
    flags: u16,
    body_len: u64,
    rest: Cursor<'a>,
}

fn read_prelude(bytes: &[u8]) -> Result<Prelude<'_>> {
    let mut c = Cursor(bytes);
    if c.take(8, "magic")? != MAGIC {
        return Err(Error::Format("not a replay file (bad magic)".into()));
    }
    let format = c.u16("format")?;
    if !(OLDEST_READABLE_FORMAT..=FORMAT_VERSION).contains(&format) {
        return Err(Error::Format(format!(
            "file format {format}; this build reads formats {OLDEST_READABLE_FORMAT} to {FORMAT_VERSION}"
        )));
    }
    let flags = c.u16("flags")?;
    let header_len = c.u32("header length")?;
    if header_len > MAX_HEADER {
        return Err(Error::Format(format!("header of {header_len} bytes")));
    }
    let header_bytes = c.take(header_len as usize, "header")?;
    let body_len = c.u64("body length")?;
    let header_checked = format >= 2;
    if header_checked {
        let covered = bytes.len() - c.0.len();
        let stored = c.u64("header checksum")?;
        if xxhash_rust::xxh3::xxh3_64(&bytes[..covered]) != stored {
            return Err(Error::Format(
                "header checksum mismatch (damaged or altered file)".into(),
            ));
        }
    }
    let mut header: FileHeader =
        rmp_serde::from_slice(header_bytes).map_err(|e| Error::Format(format!("header: {e}")))?;
    if header.format != format || header.compressed != (flags & FLAG_ZSTD != 0) {
        return Err(Error::Format(format!(
            "the header (format {}, compressed {}) contradicts the file's prelude (format {format}, flags {flags:#x})",
            header.format, header.compressed
        )));
    }
    header.header_checked = header_checked;
    Ok(Prelude {
        header,
        flags,
        body_len,
        rest: c,
    })
}

/// Reads only the header of a replay file's bytes (checked, from format 2 on).
pub fn header_from_bytes(bytes: &[u8]) -> Result<FileHeader> {
    read_prelude(bytes).map(|p| p.header)
}

/// Decodes a replay file.
pub fn from_bytes(bytes: &[u8]) -> Result<(FileHeader, Recording)> {
    let (header, streams) = streams_from_bytes(bytes)?;
    let rec = Recording::from_streams(streams)?;
    Ok((header, rec))
}

/// Decodes a replay file's raw streams (checked against the file's checksums) without
/// indexing them as a log, for readers that must cope with logs too damaged to re-run.
pub fn streams_from_bytes(bytes: &[u8]) -> Result<(FileHeader, Streams)> {
    let Prelude {
        header,
        flags,
        body_len,
        rest: mut c,
    } = read_prelude(bytes)?;
    let body_len = usize::try_from(body_len).map_err(|_| Error::Format("body too large".into()))?;
    let raw = c.take(body_len, "body")?;
    if !c.0.is_empty() {
        return Err(Error::Format(format!(
            "{} bytes after the body (damaged or altered file)",
            c.0.len()
        )));
    }
    let body = if flags & FLAG_ZSTD != 0 {
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(raw)
            .and_then(|mut d| d.read_to_end(&mut out))
            .map_err(|e| Error::Format(format!("body does not decompress: {e}")))?;
        out
    } else {
        raw.to_vec()
    };
    if xxhash_rust::xxh3::xxh3_64(&body) != header.body_xxh3 {
        return Err(Error::Format(
            "body checksum mismatch (damaged file)".into(),
        ));
    }
    let streams: Streams =
        rmp_serde::from_slice(&body).map_err(|e| Error::Format(format!("body: {e}")))?;
    Ok((header, streams))
}

/// Reads a replay file.
pub fn read(path: &Path) -> Result<(FileHeader, Recording)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    from_bytes(&bytes)
}

/// Reads a replay file's raw streams (see [`streams_from_bytes`]).
pub fn read_streams(path: &Path) -> Result<(FileHeader, Streams)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    streams_from_bytes(&bytes)
}

/// Writes a replay file (to a temporary name first, so a crash never leaves half a file
/// under the real name); returns its size.
pub fn write(path: &Path, rec: &Recording, compress: bool) -> Result<u64> {
    let bytes = to_bytes(rec, compress)?;
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("partial");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(matches!(from_bytes(b""), Err(Error::Format(_))));
        assert!(matches!(from_bytes(b"CNITRPLY"), Err(Error::Format(_))));
        assert!(matches!(
            from_bytes(b"NOTAFILE0000000000000000"),
            Err(Error::Format(_))
        ));
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        huge.extend_from_slice(&0u16.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(from_bytes(&huge), Err(Error::Format(_))));
    }
}
