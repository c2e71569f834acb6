//! A service's state taken apart into named parts (globals, players, entities), as JSON
//! values, and the field-level difference between two of them: what `state` prints and
//! what a desync report shows.

use std::collections::BTreeMap;
use std::fmt;

use economy::Economy;
use engine::sim::Sim;
use events::{EntityKind, PlayerId, UnitId};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::Service;

/// A part of a state, ordered globals, then players, then entities by id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Global(String),
    Player(PlayerId),
    Entity(UnitId),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Global(name) => f.write_str(name),
            Part::Player(p) => write!(f, "player {p}"),
            Part::Entity(u) => write!(f, "entity {u}"),
        }
    }
}

/// A state as parts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Inspection {
    pub service: Service,
    /// The last tick the state includes (`None` before the first).
    pub tick: Option<u64>,
    pub hash: u64,
    #[serde(serialize_with = "parts_by_name")]
    pub parts: BTreeMap<Part, Value>,
    /// "light_tank of P0" and the like, for entities.
    pub labels: BTreeMap<UnitId, String>,
}

/// JSON object keys must be strings: parts are keyed by their display name.
fn parts_by_name<S: serde::Serializer>(
    parts: &BTreeMap<Part, Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(parts.iter().map(|(k, v)| (k.to_string(), v)))
}

/// A short name for an entity kind.
pub fn kind_name(k: EntityKind) -> &'static str {
    match k {
        EntityKind::Unit(u) => u.name(),
        EntityKind::Building(b) => b.name(),
    }
}

impl Inspection {
    /// Every entity's full record, in id order.
    pub fn engine_records(sim: &Sim) -> Vec<engine::sim::state::EntityRecord> {
        sim.state().records()
    }

    /// The engine's state, every component of every entity (read only).
    pub fn of_engine(sim: &Sim) -> Inspection {
        let hash = sim.hash();
        let s = sim.state();
        let tick = s.tick.checked_sub(1);
        let mut parts = BTreeMap::new();
        parts.insert(
            Part::Global("sim".into()),
            json!({
                "next_tick": s.tick,
                "rng": s.rng.state(),
                "next_id": s.next_id,
                "winner": to_json(&s.winner),
                "paths": to_json(&s.paths),
            }),
        );
        let mut tib = serde_json::Map::new();
        for i in 0..s.map.len() {
            let c = s.map.cell_at(i);
            let bails = s.map.bails(c);
            if bails > 0 {
                tib.insert(
                    format!("({},{})", c.x, c.y),
                    json!({"bails": bails, "blue": s.map.is_blue(c)}),
                );
            }
        }
        parts.insert(Part::Global("tiberium".into()), Value::Object(tib));
        for p in &s.players {
            parts.insert(Part::Player(p.id), to_json(p));
        }
        let mut labels = BTreeMap::new();
        for r in s.records() {
            labels.insert(
                r.ident.id,
                format!("{} of {}", kind_name(r.ident.kind), r.ident.owner),
            );
            parts.insert(Part::Entity(r.ident.id), to_json(&r));
        }
        Inspection {
            service: Service::Engine,
            tick,
            hash,
            parts,
            labels,
        }
    }

    /// The economy's state, from its own (named) snapshot encoding, so every field it
    /// hashes is here without reaching into private types.
    pub fn of_economy(eco: &Economy) -> Inspection {
        let bytes = eco.snapshot();
        let value = rmpv::decode::read_value(&mut &bytes[..])
            .map(|v| rmpv_to_json(&v))
            .unwrap_or(Value::Null);
        let mut parts = BTreeMap::new();
        let state = value.get("state").cloned().unwrap_or(Value::Null);
        if let Value::Object(map) = state {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("players", Value::Object(players)) => {
                        for (pk, pv) in players {
                            match pk.parse::<u8>() {
                                Ok(p) => parts.insert(Part::Player(PlayerId(p)), pv),
                                Err(_) => parts.insert(Part::Global(format!("players.{pk}")), pv),
                            };
                        }
                    }
                    (_, v) => {
                        parts.insert(Part::Global(k), v);
                    }
                }
            }
        }
        Inspection {
            service: Service::Economy,
            tick: eco.last_tick(),
            hash: eco.hash(),
            parts,
            labels: BTreeMap::new(),
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// msgpack → JSON: maps with non-string keys get their keys printed.
pub fn rmpv_to_json(v: &rmpv::Value) -> Value {
    use rmpv::Value as M;
    match v {
        M::Nil => Value::Null,
        M::Boolean(b) => Value::Bool(*b),
        M::Integer(i) => {
            if let Some(u) = i.as_u64() {
                json!(u)
            } else if let Some(s) = i.as_i64() {
                json!(s)
            } else {
                Value::Null
            }
        }
        M::F32(f) => json!(f),
        M::F64(f) => json!(f),
        M::String(s) => Value::String(s.as_str().unwrap_or_default().to_string()),
        M::Binary(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
        M::Array(a) => Value::Array(a.iter().map(rmpv_to_json).collect()),
        M::Map(m) => {
            let mut out = serde_json::Map::new();
            for (k, val) in m {
                let key = match k {
                    M::String(s) => s.as_str().unwrap_or_default().to_string(),
                    other => match rmpv_to_json(other) {
                        Value::String(s) => s,
                        j => j.to_string(),
                    },
                };
                out.insert(key, rmpv_to_json(val));
            }
            Value::Object(out)
        }
        M::Ext(t, b) => json!({"ext": t, "data": b}),
    }
}

/// One field that differs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    pub part: Part,
    /// A path inside the part (`mobile.dest.x`); empty when the whole part is missing on
    /// one side.
    pub path: String,
    pub recorded: Option<Value>,
    pub rerun: Option<Value>,
}

impl Difference {
    /// The entity concerned, if any.
    pub fn entity(&self) -> Option<UnitId> {
        match self.part {
            Part::Entity(u) => Some(u),
            _ => None,
        }
    }

    /// The component (first path segment): `mobile`, `body`, `credits`, ...
    pub fn component(&self) -> &str {
        self.path
            .split(['.', '['])
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("(whole)")
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| match v {
            Some(v) => {
                let s = v.to_string();
                if s.chars().count() > 80 {
                    format!("{}…", s.chars().take(77).collect::<String>())
                } else {
                    s
                }
            }
            None => "(absent)".to_string(),
        };
        if self.path.is_empty() {
            write!(f, "{}: ", self.part)?;
        } else {
            write!(f, "{} {}: ", self.part, self.path)?;
        }
        write!(
            f,
            "recorded {} / re-run {}",
            show(&self.recorded),
            show(&self.rerun)
        )
    }
}

/// Differences listed per part at most (a diverged path can differ in every waypoint).
pub const MAX_PER_PART: usize = 8;

/// Field-level differences between the recorded state and the re-run's, at most `limit`.
pub fn diff(recorded: &Inspection, rerun: &Inspection, limit: usize) -> Vec<Difference> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&Part> =
        recorded.parts.keys().chain(rerun.parts.keys()).collect();
    for part in keys {
        if out.len() >= limit {
            break;
        }
        match (recorded.parts.get(part), rerun.parts.get(part)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                let mut la = BTreeMap::new();
                let mut lb = BTreeMap::new();
                leaves(a, String::new(), &mut la);
                leaves(b, String::new(), &mut lb);
                let paths: std::collections::BTreeSet<&String> =
                    la.keys().chain(lb.keys()).collect();
                let mut n = 0;
                for p in paths {
                    let (x, y) = (la.get(p), lb.get(p));
                    if x != y {
                        if n == MAX_PER_PART || out.len() >= limit {
                            break;
                        }
                        out.push(Difference {
                            part: part.clone(),
                            path: p.clone(),
                            recorded: x.cloned(),
                            rerun: y.cloned(),
                        });
                        n += 1;
                    }
                }
            }
            (a, b) => out.push(Difference {
                part: part.clone(),
                path: String::new(),
                recorded: a.cloned(),
                rerun: b.cloned(),
            }),
        }
    }
    out
}

fn leaves(v: &Value, prefix: String, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(x, p, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, format!("{prefix}[{i}]"), out);
            }
            // The length is a field too: a shorter list shows up even where the common
            // prefix agrees.
            out.insert(format!("{prefix}.len"), json!(a.len()));
        }
        other => {
            out.insert(prefix, other.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insp(parts: Vec<(Part, Value)>) -> Inspection {
        Inspection {
            service: Service::Engine,
            tick: Some(1),
            hash: 0,
            parts: parts.into_iter().collect(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn diff_names_entity_and_component() {
        let a = insp(vec![(
            Part::Entity(UnitId(7)),
            json!({"mobile": {"dest": {"x": 3, "y": 4}, "path": [1, 2]}, "health": {"hp": 5}}),
        )]);
        let b = insp(vec![
            (
                Part::Entity(UnitId(7)),
                json!({"mobile": {"dest": {"x": 9, "y": 4}, "path": [1, 2]}, "health": {"hp": 5}}),
            ),
            (Part::Entity(UnitId(8)), json!({"health": {"hp": 1}})),
        ]);
        let d = diff(&a, &b, 100);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].entity(), Some(UnitId(7)));
        assert_eq!(d[0].component(), "mobile");
        assert_eq!(d[0].path, "mobile.dest.x");
        assert_eq!(d[1].entity(), Some(UnitId(8)));
        assert_eq!(d[1].recorded, None);
        assert!(diff(&a, &a, 100).is_empty());
    }
}
