//! The welcome frame's fixed part: the match's map (regenerated from the `MatchCreated`
//! spec with `engine::map::generate`, exactly as the engine does), the players, and the
//! rules subset the client needs.

use std::sync::Arc;

use engine::{Map, MapError, Rules, Terrain};
use events::{Cell, MatchCreated};

use crate::convert;
use crate::hub::Hub;
use crate::limits::PROTOCOL_VERSION;
use crate::wire::{Welcome, WireMap, WireTiberium};

/// The terrain character of a cell on the wire.
pub fn terrain_char(t: Terrain) -> char {
    match t {
        Terrain::Clear => '.',
        Terrain::Trees => 'T',
        Terrain::Rock => 'R',
        Terrain::Water => 'W',
        Terrain::Tiberium => '~',
    }
}

/// The map on the wire, and its tiberium at match start.
pub fn wire_map(map: &Map) -> WireMap {
    let n = map.size;
    let mut terrain = String::with_capacity(usize::from(n) * usize::from(n));
    let mut tiberium: Vec<WireTiberium> = Vec::new();
    for y in 0..n {
        for x in 0..n {
            let c = Cell::new(x, y);
            terrain.push(terrain_char(map.terrain(c)));
            let b = map.bails(c);
            if b > 0 {
                tiberium.push([x, y, u16::from(b), u16::from(map.is_blue(c))]);
            }
        }
    }
    WireMap {
        width: n,
        height: n,
        terrain,
        tiberium,
        starts: map.starts.iter().map(|c| [c.x, c.y]).collect(),
    }
}

/// The welcome template of a match (role and player are filled in per session).
pub fn welcome(created: &MatchCreated, rules: &Rules) -> Result<Welcome, MapError> {
    let map = engine::map::generate(&created.map, created.players.len(), rules)?;
    Ok(Welcome {
        protocol: PROTOCOL_VERSION,
        match_id: created.match_id.to_string(),
        role: String::new(),
        player: None,
        players: created.players.iter().map(convert::player).collect(),
        map: wire_map(&map),
        rules: convert::rules(rules),
        replay: None,
    })
}

/// A hub for a match whose welcome was already built.
pub fn hub(created: Arc<MatchCreated>, welcome: Welcome, rules: &Rules) -> Hub {
    let tiberium = welcome.map.tiberium.clone();
    let credits = i64::from(rules.economy.starting_credits);
    Hub::new(
        created,
        Arc::new(welcome),
        &tiberium,
        credits,
        Arc::new(rules.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::{MatchCreated, MatchId};

    #[test]
    fn welcome_has_the_whole_map() {
        let created = MatchCreated::humans(MatchId::new("m").unwrap(), 2, 32, 7);
        let w = welcome(&created, &Rules::standard()).unwrap();
        assert_eq!(w.map.terrain.chars().count(), 32 * 32);
        assert_eq!(w.map.starts.len(), 2);
        assert!(!w.map.tiberium.is_empty());
    }
}
