//! Every `replay-tool` command on real recorded matches: the engine, economy and gateway
//! binaries over a throwaway Redis run a human-vs-AI match, played through the browser
//! WebSocket protocol (moves, production, then the human sells its construction yard and
//! loses), and an AI-vs-AI match; then the real CLI runs `list`, `export`, `info`,
//! `import` (under a new id), `verify`, `state --tick N --json`, `bench`, `seek` and
//! `stats` on them, and the gateway replays the finished match (seek lands on the tick).

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/ws.rs"]
mod ws;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cluster::{bins, serial, wait_until, Cluster, ClusterConfig, TOKEN_SECRET};
use events::{Difficulty, MatchId, PlayerId, PlayerKind};
use gateway::token::TokenSigner;
use serde_json::{json, Value};

fn token(m: &MatchId, p: u8) -> String {
    TokenSigner::new(TOKEN_SECRET.as_bytes().to_vec(), Duration::from_secs(3600))
        .issue(m, PlayerId(p))
        .0
}

/// Runs the real `replay-tool` against the cluster's Redis.
fn tool(c: &Cluster, args: &[&str]) -> Output {
    Command::new(&bins().replay_tool)
        .args(["--redis-url", &c.url, "--prefix", c.keys.prefix()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running replay-tool")
}

fn ok(o: Output, what: &str) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "replay-tool {what} failed: {out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn json_of(o: Output, what: &str) -> Value {
    let out = ok(o, what);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {out}"))
}

/// What the scripted human did.
struct Played {
    /// Commands the gateway acknowledged.
    acked: usize,
    /// The tick at which the sell was sent (the yard stands at least until then).
    sold_after: u64,
    yard: u32,
}

/// Plays player 0 through the WebSocket protocol: moves its units around, queues a
/// power plant, then sells its construction yard (its only building) and waits for the
/// game-over frame.
async fn play_human(c: &Cluster, m: &MatchId) -> Played {
    let addr = c.gateways[0].addr;
    let mut sock = ws::connect(addr).await.expect("websocket");
    ws::handshake(&mut sock, &ws::Role::Player { token: token(m, 0) }, None)
        .await
        .expect("join");
    let mut yard = None;
    let mut units: Vec<u32> = Vec::new();
    let mut tick = 0u64;
    let mut seq = 0u64;
    let mut acked = 0usize;
    let mut sent_moves = 0;
    let mut sold_after = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last_move_tick = 0u64;
    loop {
        assert!(Instant::now() < deadline, "the human match did not end");
        let Some(v) = ws::next_json(&mut sock, Duration::from_secs(10))
            .await
            .expect("socket open")
        else {
            continue;
        };
        match v["t"].as_str() {
            Some("keyframe") | Some("delta") => {
                tick = v["tick"].as_u64().unwrap_or(tick);
                for e in v["entities"].as_array().into_iter().flatten() {
                    if e["owner"] != 0 {
                        continue;
                    }
                    let id = e["id"].as_u64().expect("id") as u32;
                    if e["kind"] == "construction_yard" {
                        yard = Some(id);
                    } else if e["building"] == false && !units.contains(&id) {
                        units.push(id);
                    }
                }
                if v["game_over"] == true {
                    break;
                }
            }
            Some("ack") => acked += 1,
            Some("game_over") => break,
            _ => {}
        }
        if units.is_empty() || sold_after.is_some() {
            continue;
        }
        if seq == 0 {
            seq += 1;
            let q =
                json!({"t": "cmd", "seq": seq, "cmd": {"kind": "queue", "item": "power_plant"}});
            assert!(ws::send(&mut sock, q).await);
        }
        if sent_moves < 4 && tick >= last_move_tick + 20 {
            seq += 1;
            sent_moves += 1;
            last_move_tick = tick;
            let to = [6 + 3 * sent_moves, 8 + 2 * sent_moves];
            let cmd =
                json!({"t": "cmd", "seq": seq, "cmd": {"kind": "move", "units": units, "to": to}});
            assert!(ws::send(&mut sock, cmd).await);
        } else if sent_moves == 4 && tick >= last_move_tick + 40 {
            let y = yard.expect("the human's construction yard was seen");
            seq += 1;
            let sell = json!({"t": "cmd", "seq": seq, "cmd": {"kind": "sell", "building": y}});
            assert!(ws::send(&mut sock, sell).await);
            sold_after = Some(tick);
        }
    }
    Played {
        acked,
        sold_after: sold_after.expect("sold"),
        yard: yard.expect("yard"),
    }
}

/// Spectates a finished match through the gateway: the welcome announces a replay, and a
/// seek answers with the keyframe of that tick holding `entities` entities.
async fn gateway_replay_seek(c: &Cluster, m: &MatchId, tick: u64) -> (u64, usize) {
    // The gateway's lobby learns of the end from the matches stream when its list is
    // read (as the browser's lobby page does before "View").
    let listed = wait_until(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || async {
            c.gateways[0]
                .get("/api/matches")
                .await
                .is_some_and(|(code, body)| {
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    code == 200
                        && v["recorded"]
                            .as_array()
                            .is_some_and(|r| r.iter().any(|x| x["match"] == m.as_str()))
                })
        },
    )
    .await;
    assert!(listed, "the gateway lists {m} as ended");
    let mut sock = ws::connect(c.gateways[0].addr).await.expect("websocket");
    let w = ws::handshake(
        &mut sock,
        &ws::Role::Spectator {
            match_id: m.to_string(),
        },
        None,
    )
    .await
    .expect("spectate");
    let last = w["replay"]["last_tick"]
        .as_u64()
        .unwrap_or_else(|| panic!("a recorded match is replayed: {w}"));
    assert!(
        ws::send(
            &mut sock,
            json!({"t": "replay", "action": "pause", "seek": tick})
        )
        .await
    );
    loop {
        let v = ws::next_json(&mut sock, Duration::from_secs(20))
            .await
            .expect("socket open")
            .expect("the seek's keyframe");
        if v["t"] == "keyframe" && v["tick"] == tick {
            return (last, v["entities"].as_array().map_or(0, Vec::len));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_on_a_browser_game_and_an_ai_match() {
    let _serial = serial().await;
    let mut c = Cluster::start(ClusterConfig::default(), 1, 1, 1).await;
    let human = c
        .create_match(
            "cli-human",
            21,
            32,
            vec![PlayerKind::Human, PlayerKind::Ai(Difficulty::Easy)],
        )
        .await;
    let aivai = c.create_ai_match("cli-aivai", 22, 32).await;
    c.wait_ticks(&[human.clone(), aivai.clone()], 5, Duration::from_secs(60))
        .await;
    let played = play_human(&c, &human).await;
    assert!(played.acked >= 5, "commands acknowledged: {}", played.acked);
    let ended = wait_until(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || async { c.ended().await.contains(&human) },
    )
    .await;
    assert!(ended, "MatchEnded recorded\n{}", c.logs(20));
    // The economy has stepped every tick the engine committed.
    let ticks = c.ticks(&human).await;
    let steps_done = wait_until(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || async { c.bus_len_eco(&human).await >= ticks },
    )
    .await;
    assert!(steps_done, "economy caught up");

    // list: both matches, the human one over (player 1 won), the AI one running.
    let list = json_of(tool(&c, &["list", "--json"]), "list");
    let find = |id: &MatchId| {
        list.as_array()
            .and_then(|a| a.iter().find(|m| m["match_id"] == id.as_str()))
            .cloned()
            .unwrap_or_else(|| panic!("{id} listed: {list}"))
    };
    let h = find(&human);
    assert_eq!(h["status"]["ended"]["winner"], 1, "{h}");
    assert_eq!(h["ticks"], ticks, "{h}");
    assert_eq!(find(&aivai)["status"], "running");

    let dir = c.dir.clone();
    let hfile = dir.join("human.cnitreplay");
    let afile = dir.join("aivai.cnitreplay");
    let s = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_string();
    for (m, f) in [(&human, &hfile), (&aivai, &afile)] {
        let out = ok(
            tool(&c, &["export", "--match", m.as_str(), "-o", &s(f)]),
            "export",
        );
        assert!(out.contains("exported"), "{out}");
        let info = json_of(tool(&c, &["info", &s(f)]), "info");
        assert_eq!(info["match_id"], m.as_str(), "{info}");
        assert!(info["ticks"].as_u64().unwrap_or(0) >= 5, "{info}");
        assert!(info["entries"]["cmd"].as_u64().unwrap_or(0) > 0, "{info}");
    }
    let info = json_of(tool(&c, &["info", &s(&hfile)]), "info");
    assert_eq!(info["ticks"], ticks, "{info}");
    assert_eq!(info["ended"]["winner"], 1, "{info}");

    // import under a new id: listed as a replay of the original, and it verifies.
    let out = ok(
        tool(&c, &["import", &s(&hfile), "--as", "cli-human-copy"]),
        "import",
    );
    assert!(out.contains("cli-human-copy"), "{out}");
    let list = json_of(tool(&c, &["list", "--json"]), "list");
    let copy = list
        .as_array()
        .and_then(|a| a.iter().find(|m| m["match_id"] == "cli-human-copy"))
        .cloned()
        .unwrap_or_else(|| panic!("copy listed: {list}"));
    assert_eq!(copy["replay_of"], human.as_str());
    assert_eq!(copy["ticks"], ticks);

    // verify: from Redis (original and copy) and from the files; every tick checked.
    for source in [
        vec!["verify", "--match", human.as_str(), "--json"],
        vec!["verify", "--match", "cli-human-copy", "--json"],
        vec!["verify", "--match", aivai.as_str(), "--json"],
        vec!["verify", hfile.to_str().expect("path"), "--json"],
        vec!["verify", afile.to_str().expect("path"), "--json"],
    ] {
        let v = json_of(tool(&c, &source), "verify");
        assert!(v["engine"]["divergence"].is_null(), "{source:?}: {v}");
        assert!(v["economy"]["divergence"].is_null(), "{source:?}: {v}");
        assert!(
            v["engine"]["ticks_checked"].as_u64().unwrap_or(0) >= 5,
            "{v}"
        );
    }
    let v = json_of(
        tool(&c, &["verify", "--match", human.as_str(), "--json"]),
        "verify",
    );
    assert_eq!(v["engine"]["ticks_checked"], ticks, "{v}");

    // state: the yard stands while the human still had it, and is gone at the end.
    let yard_key = format!("entity #{}", played.yard);
    let at = played.sold_after.to_string();
    let st = json_of(
        tool(&c, &["state", &s(&hfile), "--tick", &at, "--json"]),
        "state",
    );
    assert_eq!(
        st["engine"]["parts"][&yard_key]["ident"]["kind"]["building"], "construction_yard",
        "{yard_key} at tick {at}"
    );
    let end = (ticks - 1).to_string();
    let st = json_of(
        tool(
            &c,
            &["state", "--match", human.as_str(), "--tick", &end, "--json"],
        ),
        "state",
    );
    assert!(
        st["engine"]["parts"][&yard_key].is_null(),
        "sold by the end"
    );
    assert_eq!(st["tick"], ticks - 1);

    // bench, seek, stats on both matches.
    for f in [&hfile, &afile] {
        let out = ok(tool(&c, &["bench", &s(f)]), "bench");
        assert!(out.contains("real time") && out.contains("p99"), "{out}");
        let out = ok(tool(&c, &["seek", &s(f), "--interval", "50"]), "seek");
        assert!(out.contains("indexed seek to the end"), "{out}");
    }
    let out = ok(tool(&c, &["seek", "--match", aivai.as_str()]), "seek");
    assert!(out.contains("from Redis"), "{out}");
    let st = json_of(tool(&c, &["stats", &s(&hfile), "--json"]), "stats");
    let p0 = &st["players"][0];
    assert!(
        p0["actions"].as_u64().unwrap_or(0) >= played.acked as u64,
        "the human's acknowledged commands are its actions: {p0}"
    );
    assert_eq!(p0["buildings_lost"], 0, "a sold building is not lost: {p0}");
    let st = json_of(tool(&c, &["stats", &s(&afile), "--json"]), "stats");
    assert!(
        st["players"][1]["actions"].as_u64().unwrap_or(0) > 0,
        "{st}"
    );

    // The gateway replays the finished match: a seek lands on its tick, showing what
    // `state` shows there.
    let mid = ticks / 2;
    let (last, shown) = gateway_replay_seek(&c, &human, mid).await;
    assert_eq!(last, ticks - 1);
    let st = json_of(
        tool(
            &c,
            &["state", &s(&hfile), "--tick", &mid.to_string(), "--json"],
        ),
        "state",
    );
    let entities = st["engine"]["parts"]
        .as_object()
        .map_or(0, |p| p.keys().filter(|k| k.starts_with("entity")).count());
    assert_eq!(shown, entities, "the replay's keyframe shows every entity");

    for f in [hfile, afile] {
        std::fs::remove_file(f).ok();
    }
    let unclean = c.stop_all(Duration::from_millis(500)).await;
    assert!(unclean.is_empty(), "{unclean:?}");
}
