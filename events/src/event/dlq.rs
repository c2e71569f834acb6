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
    #[serde(with = "serde_bytes")]
    pub raw: Vec<u8>,
    pub at_ms: u64,
}
