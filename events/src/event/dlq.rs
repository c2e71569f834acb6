//! Dead letters: entries that could not be decoded or used, kept with their raw bytes.

use serde::{Deserialize, Serialize};

/// An entry a consumer could not use, copied to the dead-letter stream before it was
/// acknowledged, so nothing is lost and operators can inspect it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub source_stream: String,
    pub entry_id: String,
    pub consumer: String,
    pub reason: String,
    /// The entry's payload (the value of its `d` field; empty when it has none).
    #[serde(with = "serde_bytes")]
    pub raw: Vec<u8>,
    pub at_ms: u64,
    /// Every field of an entry not of the services' shape (one field `d`), names and
    /// values as stored, in order; empty for an entry of that shape (`raw` is all of it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<DeadField>,
}

/// One field of a dead-lettered entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadField {
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}
