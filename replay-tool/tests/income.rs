//! Income check: one harvester on a field N cells from its refinery earns within ±10% of
//! the credits per minute its cycle (drive, load, drive back, unload) predicts, over five
//! simulated minutes, with the real engine and economy in process.

use std::sync::Arc;

use engine::map::Map;
use engine::Rules;
use events::cmd::{PlaceBuilding, QueueProduction};
use events::{
    BuildingKind, Cell, Command, GameEvent, Item, MapSpec, MatchCreated, MatchId, PlayerId,
    PlayerKind, PlayerSlot, Source, UnitKind,
};
use replay_tool::stepper::Stepper;

const N: u16 = 10;
const P0: PlayerId = PlayerId(0);

fn build(s: &mut Stepper, kind: BuildingKind, at: Cell) {
    s.push(
        Source::Player(P0),
        Command::QueueProduction(QueueProduction {
            item: Item::Building(kind),
        }),
    );
    for _ in 0..2000 {
        s.step();
        if s.stack.eco.player(P0).and_then(|l| l.ready_building()) == Some((kind, false)) {
            break;
        }
    }
    s.push(
        Source::Player(P0),
        Command::PlaceBuilding(PlaceBuilding { building: kind, at }),
    );
    for _ in 0..20 {
        s.step();
    }
    assert!(
        s.stack.eco.player(P0).is_some_and(|l| l.owns(kind)),
        "{kind:?} was not placed"
    );
}

#[test]
fn one_harvester_earns_what_its_cycle_predicts() {
    let rules = Arc::new(Rules::standard());
    let size = 48;
    let mut map = Map::blank(size);
    let start = Cell::new(8, 24);
    map.starts = vec![start];
    // Refinery top-left (12, 22): 3×3, its dock is the cell below its middle: (13, 25).
    let refinery_at = Cell::new(12, 22);
    let dock = Cell::new(13, 25);
    // A 5×5 green field whose nearest cell is N cells east of the dock, on the dock's row.
    let max = rules.tiberium.max_bails;
    let mut field_cells = Vec::new();
    for dy in 0..5u16 {
        for dx in 0..5u16 {
            let c = Cell::new(dock.x + N + dx, dock.y - 2 + dy);
            map.set_bails(c, max, false);
            field_cells.push(c);
        }
    }
    let cell = u64::from(events::CELL as u32);
    let setup = MatchCreated {
        match_id: MatchId::new("income").expect("valid id"),
        seed: 1,
        map: MapSpec { size, seed: 1 },
        players: vec![PlayerSlot {
            id: P0,
            name: "solo".into(),
            kind: PlayerKind::Human,
        }],
        tick_hz: rules.tick_hz,
        scenario: events::Scenario::Skirmish,
    };
    let mut s = Stepper::on_map(rules.clone(), &setup, map);
    s.step();
    build(&mut s, BuildingKind::PowerPlant, Cell::new(8, 19));
    build(&mut s, BuildingKind::Refinery, refinery_at);

    // Five minutes from the first unload: note when each load starts unloading.
    let hz = u64::from(rules.tick_hz);
    let mut starts: Vec<u64> = Vec::new();
    let mut last_unload: Option<u64> = None;
    let mut earned = 0u64;
    let mut first: Option<u64> = None;
    loop {
        let r = s.step();
        for e in &r.committed.events {
            if let GameEvent::HarvesterUnloaded { owner, credits, .. } = e {
                assert_eq!(*owner, P0);
                // A gap of more than a few unload periods means a new load.
                if last_unload.is_none_or(|t| r.tick > t + 10) {
                    starts.push(r.tick);
                }
                last_unload = Some(r.tick);
                first.get_or_insert(r.tick);
                earned += u64::from(*credits);
            }
        }
        if first.is_some_and(|f| r.tick >= f + 5 * 60 * hz) {
            break;
        }
        assert!(r.tick < 20 * 60 * hz, "no income after 20 minutes");
    }
    assert!(
        starts.len() >= 4,
        "only {} loads in five minutes",
        starts.len()
    );

    // Expected: replay the harvest rules on the initial field (each load starts at the
    // cell with bails nearest to the dock, moves on to the nearest cell with bails as
    // one empties, drives back when full), with the rules' speed and load/unload times.
    let loads = starts.len();
    let h = &rules.harvest;
    let speed = rules
        .speed_per_tick(rules.unit(UnitKind::Harvester).speed_milli)
        .max(1) as u64;
    let load_ticks = u64::from(h.capacity_bails) * u64::from(rules.ticks(h.load_ms_per_bail));
    let unload_ticks = u64::from(h.capacity_bails) * u64::from(rules.ticks(h.unload_ms_per_bail));
    let mut field: Vec<(Cell, u32)> = field_cells.iter().map(|c| (*c, u32::from(max))).collect();
    let dist2 = |a: Cell, b: Cell| {
        let (dx, dy) = (
            i64::from(a.x) - i64::from(b.x),
            i64::from(a.y) - i64::from(b.y),
        );
        dx * dx + dy * dy
    };
    let nearest = |field: &[(Cell, u32)], from: Cell| {
        field
            .iter()
            .enumerate()
            .filter(|(_, (_, b))| *b > 0)
            .min_by_key(|(i, (c, _))| (dist2(*c, from), *i))
            .map(|(i, _)| i)
    };
    let mut cycle_ticks = Vec::new();
    for _ in 0..loads {
        let mut tenths = 0u64;
        let mut cargo = 0;
        let Some(mut i) = nearest(&field, dock) else {
            break;
        };
        tenths += u64::from(economy::fields::octile(dock, field[i].0));
        loop {
            let take = field[i].1.min(h.capacity_bails - cargo);
            field[i].1 -= take;
            cargo += take;
            if cargo >= h.capacity_bails {
                break;
            }
            let Some(j) = nearest(&field, field[i].0) else {
                break;
            };
            tenths += u64::from(economy::fields::octile(field[i].0, field[j].0));
            i = j;
        }
        tenths += u64::from(economy::fields::octile(field[i].0, dock));
        let drive = tenths * cell / 10 / speed;
        cycle_ticks.push(drive + load_ticks + unload_ticks);
    }
    let per_load = u64::from(h.capacity_bails) * u64::from(rules.tiberium.green_bail_credits);
    // The measured cycles run from load 1 to load `loads`: compare with the same ones.
    let predicted: u64 = cycle_ticks.iter().skip(1).sum();
    let expected_per_min = (loads as u64 - 1) * per_load * 60 * hz / predicted.max(1);

    // Measured: whole cycles between the first and the last load start in the window.
    let cycles = (starts.len() - 1) as u64;
    let span = starts[starts.len() - 1] - starts[0];
    let measured_per_min = cycles * per_load * 60 * hz / span;
    let diff = measured_per_min.abs_diff(expected_per_min) * 100 / expected_per_min;
    eprintln!(
        "income: {measured_per_min}/min measured, {expected_per_min}/min expected ({diff}% off), \
         {} loads, {earned} credits in five minutes; cycles predicted {cycle_ticks:?}",
        starts.len()
    );
    assert!(
        diff <= 10,
        "earned {measured_per_min}/min, expected {expected_per_min}/min ({diff}% off); \
         cycle {} ticks predicted, {} measured; {earned} credits in the window",
        predicted / (loads as u64 - 1).max(1),
        span / cycles
    );
}
