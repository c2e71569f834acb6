//! The msgpack codec: named fields (so an added optional field does not break older
//! readers), and an upcast-on-read path that lifts older schema versions to the current one.
//!
//! Large entries (view frames) may be written compressed by [`encode_compact`]: one zstd
//! frame holding the msgpack envelope. A msgpack envelope is a map, so its first byte is
//! never the zstd magic's `0x28`; [`decode`] tells the two apart by those four bytes and
//! every reader takes both.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::envelope::{Envelope, SCHEMA_VERSION};

/// Why bytes could not be turned into an envelope. Always recoverable: the caller
/// dead-letters the entry and moves on.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a valid msgpack envelope: {0}")]
    Malformed(String),
    #[error("schema version {found} is newer than this build's {SCHEMA_VERSION}")]
    TooNew { found: u16 },
    #[error("schema version {found} cannot be upcast: {why}")]
    Upcast { found: u16, why: String },
}

/// Why a value could not be encoded (a bug, never bad input).
#[derive(Debug, thiserror::Error)]
#[error("encode failed: {0}")]
pub struct EncodeError(#[from] rmp_serde::encode::Error);

/// A stream body type: knows how to lift an older version of itself to the current one.
pub trait Body: Serialize + DeserializeOwned {
    /// Rewrites the envelope (as a dynamic msgpack value) written at schema version `from`
    /// into the shape of version `from + 1`. The default: nothing changed for this body.
    fn upcast(from: u16, envelope: &mut rmpv::Value) -> Result<(), String> {
        let _ = (from, envelope);
        Ok(())
    }
}

/// Encodes an envelope as msgpack with named fields.
pub fn encode<B: Serialize>(env: &Envelope<B>) -> Result<Vec<u8>, EncodeError> {
    Ok(rmp_serde::to_vec_named(env)?)
}

/// The first four bytes of a zstd frame; never the start of a msgpack map.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Entries at least this long are compressed by [`encode_compact`]; shorter ones gain
/// little and are kept as plain msgpack.
pub const COMPRESS_MIN_BYTES: usize = 1024;
/// zstd level for [`encode_compact`]: level 1 keeps ~10× on a battle's view frame at a
/// fraction of a millisecond (docs/benchmarks.md).
pub const COMPRESS_LEVEL: i32 = 1;
/// The most a compressed entry may inflate to. A compressed entry names its size in its
/// header; one naming more (or none) is refused before anything is allocated.
pub const MAX_INFLATED_BYTES: usize = 64 << 20;

thread_local! {
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Encodes an envelope like [`encode`], then, when it is at least
/// [`COMPRESS_MIN_BYTES`] long, as one zstd frame of it (kept only when smaller).
/// [`decode`] reads both forms. For the per-tick view stream, whose frames are most of
/// what Redis stores, replicates and fsyncs.
pub fn encode_compact<B: Serialize>(env: &Envelope<B>) -> Result<Vec<u8>, EncodeError> {
    let plain = encode(env)?;
    if plain.len() < COMPRESS_MIN_BYTES {
        return Ok(plain);
    }
    let packed = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = zstd::bulk::Compressor::new(COMPRESS_LEVEL).ok();
        }
        slot.as_mut().and_then(|c| c.compress(&plain).ok())
    });
    Ok(match packed {
        Some(packed) if packed.len() < plain.len() => packed,
        _ => plain,
    })
}

/// The msgpack bytes of an entry: the entry itself, or what its zstd frame holds.
/// Refuses a frame that does not name its size or names more than
/// [`MAX_INFLATED_BYTES`], and one that does not inflate to what it names.
pub fn inflate(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, DecodeError> {
    if !bytes.starts_with(&ZSTD_MAGIC) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let size = match zstd::zstd_safe::get_frame_content_size(bytes) {
        Ok(Some(n)) if n <= MAX_INFLATED_BYTES as u64 => n as usize,
        Ok(Some(n)) => {
            return Err(DecodeError::Malformed(format!(
                "compressed entry would inflate to {n} bytes, more than {MAX_INFLATED_BYTES}"
            )))
        }
        Ok(None) | Err(_) => {
            return Err(DecodeError::Malformed(
                "compressed entry does not name its size".into(),
            ))
        }
    };
    let out = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = zstd::bulk::Decompressor::new().ok();
        }
        match slot.as_mut() {
            Some(d) => d.decompress(bytes, size).map_err(|e| e.to_string()),
            None => Err("no zstd context".into()),
        }
    });
    match out {
        Ok(out) if out.len() == size => Ok(std::borrow::Cow::Owned(out)),
        Ok(out) => Err(DecodeError::Malformed(format!(
            "compressed entry inflated to {} bytes, not the {size} it names",
            out.len()
        ))),
        Err(e) => Err(DecodeError::Malformed(format!(
            "compressed entry is not valid zstd: {e}"
        ))),
    }
}

#[derive(serde::Deserialize)]
struct VersionOnly {
    v: u16,
}

/// Decodes an envelope (plain or compressed by [`encode_compact`]), upcasting older schema
/// versions. Never panics on any input.
pub fn decode<B: Body>(bytes: &[u8]) -> Result<Envelope<B>, DecodeError> {
    let bytes = inflate(bytes)?;
    let bytes = &bytes[..];
    let VersionOnly { v } =
        rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if v == SCHEMA_VERSION {
        return rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()));
    }
    if v > SCHEMA_VERSION {
        return Err(DecodeError::TooNew { found: v });
    }
    if v == 0 {
        return Err(DecodeError::Upcast {
            found: v,
            why: "version 0 never existed".into(),
        });
    }
    let mut value = rmpv::decode::read_value(&mut &bytes[..])
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    for from in v..SCHEMA_VERSION {
        B::upcast(from, &mut value).map_err(|why| DecodeError::Upcast { found: v, why })?;
        set_field(&mut value, "v", rmpv::Value::from(from + 1));
    }
    // Back through rmp-serde, not `rmpv::ext::from_value`: rmpv's deserializer expects
    // enums as arrays and cannot read the map form rmp-serde writes (`{"player": 1}`).
    let mut upcast = Vec::with_capacity(bytes.len() + 16);
    rmpv::encode::write_value(&mut upcast, &value)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    rmp_serde::from_slice(&upcast).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// The value of a named field of a msgpack map, if present.
pub fn field_mut<'a>(map: &'a mut rmpv::Value, name: &str) -> Option<&'a mut rmpv::Value> {
    match map {
        rmpv::Value::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Sets (or adds) a named field of a msgpack map; does nothing on a non-map.
pub fn set_field(map: &mut rmpv::Value, name: &str, value: rmpv::Value) {
    if let Some(slot) = field_mut(map, name) {
        *slot = value;
    } else if let rmpv::Value::Map(entries) = map {
        entries.push((rmpv::Value::from(name), value));
    }
}

/// Renames a field of a msgpack map, if present.
pub fn rename_field(map: &mut rmpv::Value, from: &str, to: &str) {
    if let rmpv::Value::Map(entries) = map {
        for (k, _) in entries.iter_mut() {
            if k.as_str() == Some(from) {
                *k = rmpv::Value::from(to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{Command, Stop};
    use crate::envelope::Source;
    use crate::ids::{MatchId, PlayerId, UnitId};
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let env = Envelope::new(
            MatchId::new("m1").unwrap(),
            Source::Player(PlayerId(1)),
            Command::Stop(Stop {
                units: vec![UnitId(4), UnitId(9)],
            }),
        );
        let bytes = encode(&env).unwrap();
        let back: Envelope<Command> = decode(&bytes).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn newer_version_is_a_typed_error() {
        let mut env = Envelope::new(
            MatchId::new("m1").unwrap(),
            Source::System,
            Command::Stop(Stop { units: vec![] }),
        );
        env.v = SCHEMA_VERSION + 1;
        let bytes = encode(&env).unwrap();
        assert!(matches!(
            decode::<Command>(&bytes),
            Err(DecodeError::TooNew { .. })
        ));
    }

    #[test]
    fn unknown_added_field_is_ignored_by_older_readers() {
        #[derive(serde::Serialize)]
        struct Newer<'a> {
            units: &'a [u32],
            queued: bool,
        }
        #[derive(serde::Serialize)]
        enum NewerCommand<'a> {
            Stop(Newer<'a>),
        }
        let mut env = Envelope::new(
            MatchId::new("m1").unwrap(),
            Source::System,
            NewerCommand::Stop(Newer {
                units: &[3],
                queued: true,
            }),
        );
        env.v = SCHEMA_VERSION;
        let bytes = encode(&env).unwrap();
        let back: Envelope<Command> = decode(&bytes).unwrap();
        assert_eq!(
            back.body,
            Command::Stop(Stop {
                units: vec![UnitId(3)]
            })
        );
    }

    fn big_stop(n: u32) -> Envelope<Command> {
        Envelope::new(
            MatchId::new("m1").unwrap(),
            Source::Player(PlayerId(1)),
            Command::Stop(Stop {
                units: (0..n).map(|i| UnitId(1_000 + i % 16)).collect(),
            }),
        )
    }

    #[test]
    fn compact_entries_round_trip_and_small_ones_stay_plain() {
        let small = big_stop(3);
        assert_eq!(encode_compact(&small).unwrap(), encode(&small).unwrap());
        let big = big_stop(2_000);
        let plain = encode(&big).unwrap();
        let packed = encode_compact(&big).unwrap();
        assert!(packed.starts_with(&ZSTD_MAGIC));
        assert!(
            packed.len() * 2 < plain.len(),
            "{} vs {}",
            packed.len(),
            plain.len()
        );
        assert_eq!(decode::<Command>(&packed).unwrap(), big);
        assert_eq!(&inflate(&packed).unwrap()[..], &plain[..]);
    }

    #[test]
    fn a_plain_envelope_never_starts_with_the_zstd_magic() {
        // A msgpack map starts with 0x80..=0x8f, 0xde or 0xdf.
        for n in [0, 3, 20, 2_000, 70_000] {
            let first = encode(&big_stop(n)).unwrap()[0];
            assert!(matches!(first, 0x80..=0x8f | 0xde | 0xdf), "{first:#x}");
            assert_ne!(first, ZSTD_MAGIC[0]);
        }
    }

    #[test]
    fn compressed_entries_that_lie_about_their_size_are_refused() {
        let packed = encode_compact(&big_stop(2_000)).unwrap();
        // Cut short: not valid zstd.
        let cut = &packed[..packed.len() / 2];
        assert!(matches!(
            decode::<Command>(cut),
            Err(DecodeError::Malformed(_))
        ));
        // A frame without its size (streamed), refused before inflating.
        let mut unsized_frame = Vec::new();
        {
            let mut enc = zstd::stream::Encoder::new(&mut unsized_frame, 1).unwrap();
            std::io::Write::write_all(&mut enc, &encode(&big_stop(2_000)).unwrap()).unwrap();
            enc.finish().unwrap();
        }
        let err = decode::<Command>(&unsized_frame).unwrap_err().to_string();
        assert!(err.contains("does not name its size"), "{err}");
        // A bomb: 64 MiB + 1 of zeros names a size over the limit and is refused unread.
        let bomb = zstd::bulk::compress(&vec![0u8; MAX_INFLATED_BYTES + 1], 1).unwrap();
        let err = decode::<Command>(&bomb).unwrap_err().to_string();
        assert!(err.contains("more than"), "{err}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<Command>(&bytes);
            let _ = decode::<crate::TickCommitted>(&bytes);
        }

        #[test]
        fn arbitrary_bytes_after_the_zstd_magic_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut entry = ZSTD_MAGIC.to_vec();
            entry.extend_from_slice(&bytes);
            let _ = decode::<Command>(&entry);
        }

        #[test]
        fn mutated_compressed_entries_never_panic(pos in 0usize..4096, byte in any::<u8>()) {
            let mut bytes = encode_compact(&big_stop(2_000)).unwrap();
            let i = pos % bytes.len();
            bytes[i] = byte;
            let _ = decode::<Command>(&bytes);
        }

        #[test]
        fn mutated_valid_entries_never_panic(pos in 0usize..64, byte in any::<u8>()) {
            let env = Envelope::new(
                MatchId::new("m1").unwrap(),
                Source::Bot(PlayerId(0)),
                Command::Stop(Stop { units: vec![UnitId(1), UnitId(2)] }),
            );
            let mut bytes = encode(&env).unwrap();
            let i = pos % bytes.len();
            bytes[i] = byte;
            let _ = decode::<Command>(&bytes);
        }
    }
}
