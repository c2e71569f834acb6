//! Spectators' per-player panel (`players_stats`) and the post-game score (`score`): wire
//! forms of the replay tool's statistics (`replay_tool::stats`), so the gateway, the
//! replay viewer and `replay-tool stats` count every figure the same way.

use std::collections::BTreeMap;

use engine::Rules;
use events::{Bus, EntityView, Keys, MatchId, PlayerId};
use replay_tool::stats::{army_values, Stats, Tally};

use crate::wire::{ServerMsg, WirePlayerStats, WireScore};

/// Every player's standing at `tick`: the tally's ledger and counters, and the army
/// value of the units in `entities`.
pub fn players_stats<'a>(
    tick: u64,
    tally: &Tally,
    rules: &Rules,
    entities: impl IntoIterator<Item = &'a EntityView>,
) -> ServerMsg {
    let army: BTreeMap<PlayerId, u64> = army_values(rules, entities);
    ServerMsg::PlayersStats {
        tick,
        players: tally
            .standings()
            .map(|s| WirePlayerStats {
                player: s.player,
                credits: s.credits,
                power_output: s.power_output,
                power_consumption: s.power_consumption,
                army_value: army.get(&PlayerId(s.player)).copied().unwrap_or(0),
                units_built: s.counts.units_built,
                units_lost: s.counts.units_lost,
                buildings_lost: s.counts.buildings_lost,
                kills: s.counts.kills,
                harvested: s.counts.harvested,
            })
            .collect(),
    }
}

/// The score screen of a match's statistics.
pub fn score(stats: &Stats) -> ServerMsg {
    ServerMsg::Score {
        match_id: stats.match_id.clone(),
        ticks: stats.ticks,
        tick_hz: stats.tick_hz,
        players: stats
            .players
            .iter()
            .map(|p| WireScore {
                player: p.player,
                name: p.name.clone(),
                units_built: p.counts.units_built,
                units_lost: p.counts.units_lost,
                kills: p.counts.kills,
                buildings_built: p.counts.buildings_built,
                buildings_lost: p.counts.buildings_lost,
                harvested: p.counts.harvested,
                actions: p.actions,
                apm: p.apm,
            })
            .collect(),
    }
}

/// The score of a match from its log on the bus (loaded, then counted off the async
/// workers).
pub async fn score_from_bus<B: Bus>(
    bus: &B,
    keys: &Keys,
    m: &MatchId,
) -> replay_tool::Result<ServerMsg> {
    let rec = replay_tool::bus::load(bus, keys, m).await?;
    tokio::task::spawn_blocking(move || score(&replay_tool::stats::stats(&rec)))
        .await
        .map_err(|e| replay_tool::Error::Log(format!("score task failed: {e}")))
}
