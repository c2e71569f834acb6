//! Gateway integration tests: one binary (one link) with a module per concern, all over a
//! MemoryBus with tokio-tungstenite as the client.

mod ai_match;
mod battle;
mod common;
mod effects;
mod embedded;
mod fog;
mod leave;
mod lobby;
mod ops;
mod protocol;
mod reconnect;
mod replay;
mod score;
mod security;
