//! Bad input against real processes. Garbage appended straight to a match's command
//! stream (and to the matches stream) by a foreign producer lands in the DLQ while the
//! match goes on and still verifies. WebSocket abuse — oversized frames, command floods
//! past the rate limit, forged, foreign-keyed and expired tokens, orders for another
//! player's units, malformed frames, a wrong protocol version, and hundreds (CI) or
//! thousands (`CNIT_LONG=1`) of idle connections — each gets a clear error or a close,
//! nothing crashes, and a legitimate player in the same match is unaffected.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/ws.rs"]
mod ws;

use std::process::Command;
use std::time::{Duration, Instant};

use cluster::{ci_or_long, long, serial, Cluster, ClusterConfig, TOKEN_SECRET};
use events::{encode, Bus, Difficulty, Envelope, IdSpec, MatchId, PlayerId, PlayerKind, Source};
use futures::SinkExt;
use gateway::token::TokenSigner;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

fn signer() -> TokenSigner {
    TokenSigner::new(TOKEN_SECRET.as_bytes().to_vec(), Duration::from_secs(3600))
}

/// A small deterministic PRNG (xorshift64*), so a failing mutation can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Garbage a foreign producer might write: not msgpack, wrong shapes, unknown and future
/// versions, unknown command variants, another match's commands, truncations, and
/// random mutations of a valid command.
fn garbage(m: &MatchId, other: &MatchId, mutations: usize) -> Vec<Vec<u8>> {
    let valid = encode(&cluster::probe_command(m)).unwrap();
    let mut out: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"not msgpack at all".to_vec(),
        vec![0xff; 64],
        vec![0xc1],
        // An array header promising 4 billion items.
        vec![0xdd, 0xff, 0xff, 0xff, 0xff],
        // A map promising 4 billion entries.
        vec![0xdf, 0xff, 0xff, 0xff, 0xff],
        valid[..valid.len() / 2].to_vec(),
    ];
    let mut future = cluster::probe_command(m);
    future.v = 999;
    out.push(encode(&future).unwrap());
    let mut zero = cluster::probe_command(m);
    zero.v = 0;
    out.push(encode(&zero).unwrap());
    // A version-1 envelope whose body cannot be upcast.
    let mut old = cluster::probe_command(m);
    old.v = 1;
    out.push(encode(&old).unwrap());
    #[derive(serde::Serialize)]
    enum Unknown {
        Teleport { unit: u32 },
    }
    let mut unknown = Envelope::new(
        m.clone(),
        Source::Bot(PlayerId(0)),
        Unknown::Teleport { unit: 1 },
    );
    unknown.v = events::SCHEMA_VERSION;
    out.push(rmp_serde::to_vec_named(&unknown).unwrap());
    // Another match's command in this match's stream.
    out.push(encode(&cluster::probe_command(other)).unwrap());
    // Deep nesting.
    let mut deep = vec![0x91; 100_000];
    deep.push(0xc0);
    out.push(deep);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..mutations {
        let mut b = valid.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len());
            match rng.below(4) {
                0 => b[i] ^= 1 << rng.below(8),
                1 => b[i] = [0x00, 0xff, 0x7f, 0x80, 0xc0, 0xdc, 0xdd, 0xde][rng.below(8)],
                2 => {
                    b.truncate(i);
                }
                _ => {
                    let extra = rng.next().to_le_bytes();
                    b.splice(i..i, extra);
                }
            }
            if b.is_empty() {
                break;
            }
        }
        out.push(b);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_the_streams_goes_to_the_dlq_and_the_match_goes_on() {
    let _serial = serial().await;
    let mut c = Cluster::start(ClusterConfig::default(), 1, 1, 0).await;
    let m = c.create_ai_match("garbage-0", 600, 32).await;
    let other = c.create_ai_match("garbage-1", 601, 32).await;
    let matches = c.matches.clone();
    c.wait_ticks(&matches, 20, Duration::from_secs(60)).await;
    let junk = garbage(&m, &other, ci_or_long(200, 5_000));
    let appended = junk.len();
    for (i, bytes) in junk.iter().enumerate() {
        c.append_raw(&m, bytes).await;
        if i % 50 == 0 {
            c.append_command(&cluster::probe_command(&m)).await;
        }
    }
    // An entry without the payload field, as another client library might write it.
    let port = c.redis().port().to_string();
    let key = c.keys.cmd(&m);
    let ok = Command::new("redis-cli")
        .args(["-p", &port, "XADD", &key, "*", "foo", "bar"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "redis-cli XADD failed");
    // Garbage on the matches stream too: the lease code dead-letters it.
    for bytes in junk.iter().take(5) {
        c.bus
            .append(&c.keys.matches(), IdSpec::Auto, bytes, None)
            .await
            .expect("append to matches");
    }
    let now = c.ticks(&m).await;
    c.wait_ticks(&matches, now + 60, Duration::from_secs(60))
        .await;
    for s in c.engines.iter_mut().chain(c.economies.iter_mut()) {
        assert!(s.is_running(), "{} died on garbage", s.name);
    }
    let dlq_metric = c.engines[0]
        .metric("cnit_dlq_entries_total", &["stream_kind=\"cmd\""])
        .await;
    let dlq_len = c.bus.len(&c.keys.dlq()).await.unwrap_or(0);
    let unclean = c.stop_all(Duration::from_millis(500)).await;
    assert!(
        unclean.is_empty(),
        "unclean stop: {unclean:?}\n{}",
        c.logs(20)
    );
    let a = c.audit(&m).await;
    assert!(a.clean(), "{a:?}");
    assert!(a.undecodable > 0 && a.dead_lettered == a.undecodable);
    for x in &matches {
        let v = c.verify(x);
        assert!(v.ok, "{x} does not verify:\n{}", v.output);
        assert!(c.audit(x).await.clean());
    }
    eprintln!(
        "FIGURES garbage: {} foreign entries appended to one match's cmd stream (+1 without the \
         payload field, +5 on the matches stream); {} of them did not decode and all {} are in the DLQ \
         ({} dead letters for the stream, DLQ length {dlq_len}, engine cnit_dlq_entries_total{{cmd}} \
         {dlq_metric}); the rest decoded as commands and were applied or rejected by the engine ({} \
         applied in total); the match ran on ({} ticks) and both matches verify",
        appended,
        a.undecodable,
        a.dead_lettered,
        a.dlq_entries.unwrap_or(0),
        a.applied,
        a.ticks
    );
}

/// Sends `frames` and returns the error/rejection codes (plus `pong`, and `closed` when
/// the socket closes) that come back, until `expect` of them arrived or 10 s passed.
/// Game frames (keyframes, deltas, ledgers) are skipped.
async fn answers(w: &mut ws::Ws, frames: &[Message], expect: usize) -> Vec<String> {
    for f in frames {
        if w.send(f.clone()).await.is_err() {
            return vec!["closed".into()];
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < expect && Instant::now() < deadline {
        match ws::next_json(w, Duration::from_millis(500)).await {
            Ok(Some(v)) => {
                let t = v["t"].as_str().unwrap_or("").to_string();
                if t == "error" || t == "rejected" {
                    out.push(v["code"].as_str().unwrap_or("").to_string());
                }
                if t == "pong" {
                    out.push("pong".into());
                }
            }
            Ok(None) => {}
            Err(_) => {
                out.push("closed".into());
                return out;
            }
        }
    }
    out
}

async fn hello(addr: std::net::SocketAddr) -> ws::Ws {
    let mut w = ws::connect(addr).await.expect("connect");
    assert!(ws::send(&mut w, json!({"t": "hello", "protocol": 2})).await);
    let ok = ws::next_json(&mut w, Duration::from_secs(5))
        .await
        .expect("hello_ok")
        .expect("hello_ok");
    assert_eq!(ok["t"], "hello_ok");
    w
}

fn text(v: serde_json::Value) -> Message {
    Message::Text(v.to_string().into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_abuse_gets_errors_or_closes_and_a_legit_player_is_unaffected() {
    let _serial = serial().await;
    let mut c = Cluster::start(ClusterConfig::default(), 1, 1, 1).await;
    let m = c
        .create_match(
            "abuse",
            700,
            32,
            vec![PlayerKind::Human, PlayerKind::Ai(Difficulty::Easy)],
        )
        .await;
    c.wait_ticks(std::slice::from_ref(&m), 20, Duration::from_secs(60))
        .await;
    let gw = c.gateways[0].addr;
    let rss_before = c.gateways[0].rss_kib().unwrap_or(0);
    let signer = signer();
    let legit_token = signer.issue(&m, PlayerId(0)).0;
    let until = c.ticks(&m).await + ci_or_long(500, 900);
    let legit = tokio::spawn(ws::view_with(
        ws::Role::Player {
            token: legit_token.clone(),
        },
        vec![gw],
        0,
        ws::ViewOptions {
            until,
            deadline: Instant::now() + Duration::from_secs(120),
            command_every: Some(Duration::from_millis(300)),
        },
    ));
    let mut results: Vec<(&str, Vec<String>)> = Vec::new();
    let t_abuse = Instant::now();

    // Oversized text and binary frames: the WebSocket layer closes the socket.
    let mut w = hello(gw).await;
    let big = "x".repeat(gateway::limits::MAX_FRAME_BYTES + 1024);
    let got = answers(&mut w, &[Message::Text(big.into())], usize::MAX).await;
    assert_eq!(
        got.last().map(String::as_str),
        Some("closed"),
        "oversized text: {got:?}"
    );
    results.push(("oversized text frame", got));
    eprintln!(
        "abuse: {:?} ({:.1} s)",
        results.last(),
        t_abuse.elapsed().as_secs_f64()
    );
    let mut w = hello(gw).await;
    let got = answers(
        &mut w,
        &[Message::Binary(vec![0u8; 200_000].into())],
        usize::MAX,
    )
    .await;
    assert_eq!(
        got.last().map(String::as_str),
        Some("closed"),
        "oversized binary: {got:?}"
    );
    results.push(("oversized binary frame", got));
    eprintln!(
        "abuse: {:?} ({:.1} s)",
        results.last(),
        t_abuse.elapsed().as_secs_f64()
    );

    // Malformed frames get errors and the session goes on.
    let mut w = hello(gw).await;
    let got = answers(
        &mut w,
        &[
            Message::Text("not json".into()),
            text(json!({"t": 5})),
            text(json!({"t": "teleport"})),
            text(json!({"t": "cmd"})),
            text(json!({"t": "cmd", "seq": 1, "cmd": {"kind": "stop", "units": [1]}})),
            text(json!({"t": "spectate", "match": "no such match!"})),
            Message::Binary(vec![1, 2, 3].into()),
            text(json!({"t": "ping", "id": 7})),
        ],
        8,
    )
    .await;
    assert_eq!(
        got,
        [
            "malformed",
            "malformed",
            "unknown_type",
            "malformed",
            "not_joined",
            "unknown_match",
            "binary_not_supported",
            "pong"
        ],
        "malformed frames"
    );
    results.push(("malformed frames", got));
    eprintln!(
        "abuse: {:?} ({:.1} s)",
        results.last(),
        t_abuse.elapsed().as_secs_f64()
    );

    // Forged, foreign-keyed, expired and mangled tokens.
    let mut w = hello(gw).await;
    let foreign = TokenSigner::new(b"another secret".to_vec(), Duration::from_secs(60))
        .issue(&m, PlayerId(0))
        .0;
    let expired = signer.issue_until(&m, PlayerId(0), events::now_ms() - 1_000);
    let mut flipped = legit_token.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
    let forged_player = legit_token.replacen(&format!(".{}.", 0), ".1.", 1);
    let tokens = [
        "garbage".to_string(),
        foreign,
        expired,
        String::from_utf8(flipped).unwrap(),
        forged_player,
        format!("v1.{m}.0.99999999999999.{}", "0".repeat(64)),
    ];
    let frames: Vec<Message> = tokens
        .iter()
        .map(|t| text(json!({"t": "join", "token": t})))
        .chain([text(json!({"t": "ping", "id": 1}))])
        .collect();
    let got = answers(&mut w, &frames, tokens.len() + 1).await;
    assert_eq!(got.len(), tokens.len() + 1, "tokens: {got:?}");
    assert!(
        got[..tokens.len()].iter().all(|c| c == "bad_token"),
        "tokens: {got:?}"
    );
    results.push(("forged/expired tokens", got));
    eprintln!(
        "abuse: {:?} ({:.1} s)",
        results.last(),
        t_abuse.elapsed().as_secs_f64()
    );

    // Wrong protocol version: a typed error, then the socket closes.
    let mut w = ws::connect(gw).await.expect("connect");
    let got = answers(&mut w, &[text(json!({"t": "hello", "protocol": 99}))], 2).await;
    assert_eq!(got, ["protocol_mismatch", "closed"], "protocol mismatch");
    results.push(("protocol mismatch", got));
    eprintln!(
        "abuse: {:?} ({:.1} s)",
        results.last(),
        t_abuse.elapsed().as_secs_f64()
    );

    // A spectator cannot command.
    let mut w = hello(gw).await;
    assert!(ws::send(&mut w, json!({"t": "spectate", "match": m.as_str()})).await);
    let mut enemy_units = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while enemy_units.is_empty() && Instant::now() < deadline {
        if let Ok(Some(v)) = ws::next_json(&mut w, Duration::from_secs(1)).await {
            if v["t"] == "keyframe" {
                for e in v["entities"].as_array().into_iter().flatten() {
                    if e["owner"] == 1 && !e["building"].as_bool().unwrap_or(true) {
                        enemy_units.push(e["id"].as_u64().unwrap_or(0));
                    }
                }
            }
        }
    }
    assert!(!enemy_units.is_empty(), "no enemy unit seen");
    let got = answers(
        &mut w,
        &[text(
            json!({"t": "cmd", "seq": 1, "cmd": {"kind": "stop", "units": [1]}}),
        )],
        1,
    )
    .await;
    assert!(
        got.contains(&"read_only".to_string()),
        "spectator cmd: {got:?}"
    );
    results.push(("spectator command", got));
    eprintln!(
        "abuse: {:?} ({:.1} s)",
        results.last(),
        t_abuse.elapsed().as_secs_f64()
    );
    drop(w);

    // Another player's units, then a flood past the rate limit on a second connection of
    // the same player (its own bucket; the legitimate connection keeps its own).
    let mut w = hello(gw).await;
    assert!(ws::send(&mut w, json!({"t": "join", "token": legit_token})).await);
    let mut frames = vec![text(json!({"t": "cmd", "seq": 1,
        "cmd": {"kind": "move", "units": enemy_units.clone(), "to": [5, 5]}}))];
    for seq in 2..202 {
        frames.push(text(json!({"t": "cmd", "seq": seq,
            "cmd": {"kind": "move", "units": [], "to": [5, 5]}})));
    }
    frames.push(text(json!({"t": "ping", "id": 9})));
    let flood_started = Instant::now();
    // Answers: per flooded command either rate_limited or, for the ones the bucket let
    // through, `empty` (the order names no unit), then the pong; and for the enemy's units,
    // which the player does not see at the start, the engine's `no_such_unit` (the same
    // answer as for ids that do not exist: the fog tells nothing), whenever it comes.
    let foreign = |c: &String| c == "not_your_unit" || c == "no_such_unit";
    let mut got = answers(&mut w, &frames, 1).await;
    while !(got.iter().any(|c| c == "closed")
        || got.iter().any(|c| c == "pong") && got.iter().any(foreign))
        && flood_started.elapsed() < Duration::from_secs(20)
    {
        got.extend(answers(&mut w, &[], 1).await);
    }
    let flood_s = flood_started.elapsed().as_secs_f64();
    assert!(got.iter().any(foreign), "foreign units: {got:?}");
    let limited = got.iter().filter(|c| *c == "rate_limited").count();
    let let_through = got.iter().filter(|c| *c == "empty").count();
    let closed = got.iter().any(|c| c == "closed");
    // Every flooded frame is answered and the session goes on: the replies wait for the
    // writer instead of overflowing the send queue (which dropped the client before).
    assert!(
        !closed && got.iter().any(|c| c == "pong"),
        "the flooding session was closed or did not answer the ping: {got:?}"
    );
    assert_eq!(
        limited + let_through,
        200,
        "one answer per flooded command: {got:?}"
    );
    // The bucket holds 20 and refills 20 per second while the gateway works through the
    // flood: at most that many get through.
    let allowed = f64::from(gateway::limits::COMMAND_BURST)
        + f64::from(gateway::limits::COMMANDS_PER_SECOND) * flood_s
        + 2.0;
    assert!(
        limited > 0 && (let_through as f64) <= allowed,
        "{let_through} flooded commands got through in {flood_s:.2} s (allowed {allowed:.0}): {got:?}"
    );
    let flood_dropped = c.gateways[0]
        .metric("gateway_slow_clients_dropped_total", &[])
        .await;
    results.push((
        "foreign units + flood",
        vec![format!(
            "foreign units refused; of 200 flooded: {let_through} through the bucket, {limited} rate_limited, \
             then {} (slow-client drops so far: {flood_dropped})",
            if closed { "closed" } else { "pong" }
        )],
    ));
    eprintln!(
        "abuse: {:?} ({:.1} s)",
        results.last(),
        t_abuse.elapsed().as_secs_f64()
    );
    drop(w);

    // Idle connections: upgraded sockets that never say hello, and joined spectators
    // that never read their socket.
    let idle_n: usize = ci_or_long(300, 3_000);
    let silent_n: usize = ci_or_long(30, 200);
    let mut idle = Vec::with_capacity(idle_n);
    let t_idle = Instant::now();
    for _ in 0..idle_n {
        if let Some(w) = ws::connect(gw).await {
            idle.push(w);
        }
    }
    let mut silent = Vec::with_capacity(silent_n);
    for _ in 0..silent_n {
        let mut w = hello(gw).await;
        assert!(ws::send(&mut w, json!({"t": "spectate", "match": m.as_str()})).await);
        silent.push(w);
    }
    let opened = idle.len();
    let sessions = c.gateways[0].metric("gateway_ws_sessions", &[]).await;
    let rss_loaded = c.gateways[0].rss_kib().unwrap_or(0);
    // In the long profile, hold them past the handshake timeout: the gateway closes them.
    let hold = if long() {
        gateway::limits::HANDSHAKE_TIMEOUT + Duration::from_secs(3)
    } else {
        Duration::from_secs(5)
    };
    tokio::time::sleep(hold.saturating_sub(t_idle.elapsed())).await;
    let mut closed_by_gateway = 0;
    if long() {
        for w in idle.iter_mut() {
            if let Ok(Some(v)) | Err(v) = ws::next_json(w, Duration::from_millis(20))
                .await
                .map(|o| o.map(|v| v["code"].as_str().unwrap_or("").to_string()))
            {
                if v.contains("handshake_timeout") || v.contains("closed") {
                    closed_by_gateway += 1;
                }
            }
        }
    }
    drop(idle);
    drop(silent);
    assert!(
        c.gateways[0].is_running(),
        "the gateway died\n{}",
        c.logs(30)
    );
    let slow_dropped = c.gateways[0]
        .metric("gateway_slow_clients_dropped_total", &[])
        .await;

    let r = legit.await.expect("legit player");
    let (dups, gaps) = r.violations();
    assert!(
        dups.is_empty() && gaps.is_empty(),
        "legit player: {dups:?} {gaps:?}"
    );
    assert_eq!(
        r.reconnects, 0,
        "legit player lost its socket: {:?}",
        r.drops
    );
    assert!(
        r.last() >= Some(until),
        "legit player stopped at {:?}",
        r.last()
    );
    assert!(
        r.errors.is_empty(),
        "legit player got errors {:?}",
        r.errors
    );
    assert!(
        !r.rejected.iter().any(|c| c == "rate_limited"),
        "legit player was rate limited"
    );
    assert!(
        r.acked.len() as u64 + 1 >= r.commands_sent,
        "legit commands: {} sent, {} acknowledged",
        r.commands_sent,
        r.acked.len()
    );
    let unclean = c.stop_all(Duration::from_millis(500)).await;
    assert!(
        unclean.is_empty(),
        "unclean stop: {unclean:?}\n{}",
        c.logs(20)
    );
    let a = c.audit(&m).await;
    assert!(a.clean(), "{a:?}");
    let v = c.verify(&m);
    assert!(v.ok, "does not verify:\n{}", v.output);
    eprintln!(
        "FIGURES websocket abuse: {opened} idle upgraded sockets + {silent_n} never-reading spectators \
         held {:.1} s (gateway_ws_sessions {sessions}, gateway RSS {rss_before} KiB -> {rss_loaded} KiB, \
         slow clients dropped {slow_dropped}, closed by the handshake timeout {closed_by_gateway}); the \
         legitimate player got {} ticks with no gap or duplicate, {} of {} commands acknowledged, no error",
        hold.as_secs_f64(),
        r.ticks.len(),
        r.acked.len(),
        r.commands_sent
    );
}
