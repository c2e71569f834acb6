//! Where the AI puts a finished building: clear, buildable cells within the placement
//! radius of its own buildings, off the lanes around other buildings, as near as possible
//! to a preferred spot (the base centre, a tiberium field, the enemy's side).

use std::collections::BTreeSet;

use events::{BuildingKind, Cell};
use rules::Rules;

use crate::map_view::MapView;

/// A building's footprint: top-left cell and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    pub fn of(rules: &Rules, kind: BuildingKind, at: Cell) -> Rect {
        let (w, h) = rules
            .buildings
            .get(&kind)
            .map_or((1, 1), |b| (b.width, b.height));
        Rect {
            x: i32::from(at.x),
            y: i32::from(at.y),
            w: i32::from(w),
            h: i32::from(h),
        }
    }

    /// Empty cells between two rectangles along the worse axis (0 when touching or
    /// overlapping).
    fn gap(&self, o: &Rect) -> i32 {
        let gx = (o.x - (self.x + self.w)).max(self.x - (o.x + o.w)).max(0);
        let gy = (o.y - (self.y + self.h)).max(self.y - (o.y + o.h)).max(0);
        gx.max(gy)
    }

    fn overlaps_grown(&self, o: &Rect, margin: i32) -> bool {
        self.x < o.x + o.w + margin
            && o.x - margin < self.x + self.w
            && self.y < o.y + o.h + margin
            && o.y - margin < self.y + self.h
    }

    fn center2(&self) -> (i32, i32) {
        (2 * self.x + self.w, 2 * self.y + self.h)
    }
}

/// What placement looks at.
pub struct Site<'a> {
    pub rules: &'a Rules,
    pub map: Option<&'a MapView>,
    pub size: u16,
    /// Own buildings' footprints.
    pub own: &'a [Rect],
    /// Other known footprints (enemy buildings) that must not be overlapped.
    pub others: &'a [Rect],
    /// (kind, top-left) tries the engine refused recently.
    pub failed: &'a BTreeSet<(BuildingKind, Cell)>,
}

/// Free lane kept around every building so units can get out of the base.
const LANE: i32 = 2;

/// The best top-left cell for `kind` near `prefer`, or `None` if nothing fits.
pub fn choose(site: &Site<'_>, kind: BuildingKind, prefer: Cell) -> Option<Cell> {
    let radius = i32::from(site.rules.economy.placement_radius);
    let probe = Rect::of(site.rules, kind, Cell::new(0, 0));
    let (w, h) = (probe.w, probe.h);
    // Only cells that can be within reach of an own building are worth looking at.
    let reach = radius + w.max(h);
    let (mut x0, mut y0, mut x1, mut y1) = (i32::MAX, i32::MAX, i32::MIN, i32::MIN);
    for r in site.own {
        x0 = x0.min(r.x - reach);
        y0 = y0.min(r.y - reach);
        x1 = x1.max(r.x + r.w + reach);
        y1 = y1.max(r.y + r.h + reach);
    }
    let n = i32::from(site.size);
    let (x0, y0, x1, y1) = (x0.max(0), y0.max(0), x1.min(n - w), y1.min(n - h));
    let px = 2 * i32::from(prefer.x) + 1;
    let py = 2 * i32::from(prefer.y) + 1;
    let mut best: Option<(i64, Cell)> = None;
    for y in y0..=y1 {
        for x in x0..=x1 {
            let rect = Rect { x, y, w, h };
            if !fits(site, &rect, radius) {
                continue;
            }
            let at = Cell::new(x as u16, y as u16);
            if site.failed.contains(&(kind, at)) {
                continue;
            }
            let (cx, cy) = rect.center2();
            let d = i64::from(cx - px).pow(2) + i64::from(cy - py).pow(2);
            if best.is_none_or(|(bd, bc)| (d, at) < (bd, bc)) {
                best = Some((d, at));
            }
        }
    }
    best.map(|(_, c)| c)
}

fn fits(site: &Site<'_>, rect: &Rect, radius: i32) -> bool {
    if !site.own.iter().any(|o| rect.gap(o) < radius) {
        return false;
    }
    if site
        .own
        .iter()
        .chain(site.others)
        .any(|o| rect.overlaps_grown(o, LANE))
    {
        return false;
    }
    let n = i32::from(site.size);
    for dy in 0..rect.h {
        for dx in 0..rect.w {
            let (x, y) = (rect.x + dx, rect.y + dy);
            if x < 0 || y < 0 || x >= n || y >= n {
                return false;
            }
            let c = Cell::new(x as u16, y as u16);
            if let Some(m) = site.map {
                // Keep a cell of passable ground around buildings too, so the base does
                // not wall itself in against water or rock.
                if !m.is_buildable(c) {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_near_the_base_off_the_lanes_and_skips_failed_spots() {
        let r = Rules::standard();
        let yard = Rect::of(&r, BuildingKind::ConstructionYard, Cell::new(10, 10));
        let own = [yard];
        let mut failed = BTreeSet::new();
        let site = Site {
            rules: &r,
            map: None,
            size: 64,
            own: &own,
            others: &[],
            failed: &failed,
        };
        let at = choose(&site, BuildingKind::PowerPlant, Cell::new(20, 11)).unwrap();
        let pp = Rect::of(&r, BuildingKind::PowerPlant, at);
        assert!(!pp.overlaps_grown(&yard, LANE), "{at:?}");
        assert!(pp.gap(&yard) < i32::from(r.economy.placement_radius));
        assert!(at.x > 10, "prefers the east side: {at:?}");
        failed.insert((BuildingKind::PowerPlant, at));
        let site = Site {
            rules: &r,
            map: None,
            size: 64,
            own: &own,
            others: &[],
            failed: &failed,
        };
        let again = choose(&site, BuildingKind::PowerPlant, Cell::new(20, 11)).unwrap();
        assert_ne!(again, at);
    }

    #[test]
    fn respects_unbuildable_terrain() {
        let r = Rules::standard();
        let mut map = MapView::open(32);
        for v in map.buildable.iter_mut() {
            *v = false;
        }
        let own = [Rect::of(
            &r,
            BuildingKind::ConstructionYard,
            Cell::new(10, 10),
        )];
        let failed = BTreeSet::new();
        let site = Site {
            rules: &r,
            map: Some(&map),
            size: 32,
            own: &own,
            others: &[],
            failed: &failed,
        };
        assert_eq!(
            choose(&site, BuildingKind::PowerPlant, Cell::new(11, 11)),
            None
        );
    }
}
