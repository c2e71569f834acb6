//! The dead-letter path: an entry that cannot be decoded (or used) is copied to the DLQ
//! stream with its source, id, reason and raw bytes, then acknowledged and counted.

use crate::bus::{Bus, BusError, Entry, IdSpec, PAYLOAD_FIELD};
use crate::codec::{decode, Body};
use crate::envelope::{now_ms, Envelope};
use crate::event::{DeadField, DeadLetter};
use crate::keys::Keys;

/// Schema version of dead-letter entries (they carry no envelope: the thing they wrap may
/// not have one). 2 added `fields` (version 1 entries read with none).
pub const DEAD_LETTER_VERSION: u16 = 2;

/// The DLQ keeps about this many dead letters (MAXLEN ~): a producer flooding garbage
/// must not grow Redis without bound; operators export the DLQ long before it wraps.
pub const DLQ_MAXLEN: usize = 100_000;

/// Prometheus counter of entries sent to the DLQ.
pub const DLQ_METRIC: &str = "cnit_dlq_entries_total";

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    v: u16,
    #[serde(flatten)]
    letter: DeadLetter,
}

/// Encodes a dead letter for the DLQ stream.
pub fn encode_dead_letter(letter: &DeadLetter) -> Vec<u8> {
    rmp_serde::to_vec_named(&Stored {
        v: DEAD_LETTER_VERSION,
        letter: letter.clone(),
    })
    .unwrap_or_default()
}

/// Decodes a DLQ entry.
pub fn decode_dead_letter(bytes: &[u8]) -> Option<DeadLetter> {
    rmp_serde::from_slice::<Stored>(bytes)
        .ok()
        .map(|s| s.letter)
}

/// Appends a dead letter for `entry` of `stream`, and acknowledges it in `group` if the
/// entry came through a consumer group.
pub async fn dead_letter<B: Bus>(
    bus: &B,
    keys: &Keys,
    stream: &str,
    group: Option<(&str, &str)>,
    entry: &Entry,
    reason: &str,
) -> Result<(), BusError> {
    // Without our field there was nothing to decode: that, not the decoder's complaint
    // about zero bytes, is the reason.
    let reason = if entry.lacks_payload() {
        format!("missing field {PAYLOAD_FIELD}")
    } else {
        reason.to_string()
    };
    let letter = DeadLetter {
        source_stream: stream.to_string(),
        entry_id: entry.id.to_string(),
        consumer: group.map(|(_, c)| c.to_string()).unwrap_or_default(),
        reason: reason.clone(),
        raw: entry.payload.clone(),
        at_ms: now_ms(),
        fields: entry
            .fields
            .iter()
            .flatten()
            .map(|(name, value)| DeadField {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    };
    bus.append(
        &keys.dlq(),
        IdSpec::Auto,
        &encode_dead_letter(&letter),
        Some(DLQ_MAXLEN),
    )
    .await?;
    if let Some((g, _)) = group {
        bus.ack(stream, g, &[entry.id]).await?;
    }
    metrics::counter!(DLQ_METRIC, "stream_kind" => stream_kind(stream)).increment(1);
    tracing::warn!(stream, id = %entry.id, reason = %reason, "entry dead-lettered");
    Ok(())
}

/// The last `:`-separated part of a key (`cmd`, `tick`, ...), a bounded metric label.
fn stream_kind(stream: &str) -> String {
    stream.rsplit(':').next().unwrap_or("").to_string()
}

/// Decodes an entry; an undecodable one is dead-lettered (and acknowledged in `group`)
/// and `None` is returned, so the consumer simply moves on.
pub async fn decode_or_dead_letter<T: Body, B: Bus>(
    bus: &B,
    keys: &Keys,
    stream: &str,
    group: Option<(&str, &str)>,
    entry: &Entry,
) -> Result<Option<Envelope<T>>, BusError> {
    match decode::<T>(&entry.payload) {
        Ok(env) => Ok(Some(env)),
        Err(e) => {
            dead_letter(bus, keys, stream, group, entry, &e.to_string()).await?;
            Ok(None)
        }
    }
}
