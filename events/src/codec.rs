//! The msgpack codec: named fields (so an added optional field does not break older
//! readers), and an upcast-on-read path that lifts older schema versions to the current one.

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

#[derive(serde::Deserialize)]
struct VersionOnly {
    v: u16,
}

/// Decodes an envelope, upcasting older schema versions. Never panics on any input.
pub fn decode<B: Body>(bytes: &[u8]) -> Result<Envelope<B>, DecodeError> {
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

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<Command>(&bytes);
            let _ = decode::<crate::TickCommitted>(&bytes);
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
