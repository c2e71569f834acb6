//! Fixed-point helpers: integer square root, distances, facings and an integer sine,
//! so nothing in the simulation (or the map generator) touches a float.

use events::{Cell, Pos};

/// Floor of the square root of `v`.
pub fn isqrt(v: u64) -> u64 {
    if v < 2 {
        return v;
    }
    // Newton's method from an upper bound; converges in a handful of steps.
    let mut x = 1u64 << ((64 - v.leading_zeros()).div_ceil(2));
    loop {
        let y = (x + v / x) / 2;
        if y >= x {
            return x;
        }
        x = y;
    }
}

/// Squared distance between two positions (fixed-point units squared).
pub fn dist2(a: Pos, b: Pos) -> i64 {
    let dx = i64::from(a.x) - i64::from(b.x);
    let dy = i64::from(a.y) - i64::from(b.y);
    dx * dx + dy * dy
}

/// Squared cell distance.
pub fn cell_dist2(a: Cell, b: Cell) -> i64 {
    let dx = i64::from(a.x) - i64::from(b.x);
    let dy = i64::from(a.y) - i64::from(b.y);
    dx * dx + dy * dy
}

/// Chebyshev (king-move) distance between cells.
pub fn chebyshev(a: Cell, b: Cell) -> u16 {
    a.x.abs_diff(b.x).max(a.y.abs_diff(b.y))
}

/// Sine of a whole-degree angle, scaled by 1024 (Bhaskara I's approximation, error < 0.2%),
/// used by the map generator to place starts on a ring.
pub fn sin_deg(deg: i32) -> i32 {
    let d = deg.rem_euclid(360);
    let (d, sign) = if d > 180 { (d - 180, -1) } else { (d, 1) };
    let p = d * (180 - d);
    sign * (4 * 1024 * p) / (40_500 - p)
}

/// Cosine counterpart of [`sin_deg`].
pub fn cos_deg(deg: i32) -> i32 {
    sin_deg(deg + 90)
}

/// Facing in 1/256 turns (0 = east, counter-clockwise with y pointing down the map, i.e.
/// 64 = north) of a direction vector; `None` for the zero vector.
pub fn facing(dx: i32, dy: i32) -> Option<u8> {
    if dx == 0 && dy == 0 {
        return None;
    }
    // Screen y grows downwards; flip so counter-clockwise reads naturally.
    let (x, y) = (i64::from(dx), -i64::from(dy));
    let (ax, ay) = (x.abs(), y.abs());
    // Angle within the first octant in 1/256 turns: atan(t) ≈ t * 32 for t in [0, 1]
    // with a small correction; exact enough for drawing a sprite.
    let (small, big) = if ay <= ax { (ay, ax) } else { (ax, ay) };
    let t = small * 1024 / big; // 0..=1024
                                // atan(t)/(2π)*256 with atan(t) ≈ t*(π/4 + 0.273*(1-t)): in 1/256 turns,
                                // 32*t + 11.1*t*(1-t) (t as a fraction).
    let oct = (32 * t + 11 * t * (1024 - t) / 1024) / 1024;
    let a = if ay <= ax { oct } else { 64 - oct };
    let a = match (x >= 0, y >= 0) {
        (true, true) => a,
        (false, true) => 128 - a,
        (false, false) => 128 + a,
        (true, false) => 256 - a,
    };
    Some((a & 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isqrt_is_exact_floor() {
        for v in [0u64, 1, 2, 3, 4, 15, 16, 17, 1 << 40, u64::MAX] {
            let r = isqrt(v);
            assert!(u128::from(r) * u128::from(r) <= u128::from(v));
            assert!(u128::from(r + 1) * u128::from(r + 1) > u128::from(v));
        }
    }

    #[test]
    fn sine_is_close() {
        assert_eq!(sin_deg(0), 0);
        assert_eq!(sin_deg(90), 1024);
        assert_eq!(sin_deg(270), -1024);
        assert!((sin_deg(30) - 512).abs() <= 2);
        assert_eq!(cos_deg(0), 1024);
    }

    #[test]
    fn facings() {
        assert_eq!(facing(1, 0), Some(0));
        assert_eq!(facing(0, -1), Some(64));
        assert_eq!(facing(-1, 0), Some(128));
        assert_eq!(facing(0, 1), Some(192));
        assert_eq!(facing(5, -5), Some(32));
        assert_eq!(facing(0, 0), None);
    }
}
