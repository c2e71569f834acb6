//! The map file format: a small little-endian binary layout, versioned, validated on load.
//!
//! ```text
//! "CNITMAP" version:u8 size:u16 nstarts:u8 (x:u16 y:u16)* nfields:u16
//!   (blue:u8 ncells:u32 (x:u16 y:u16)*)*  cells: size*size bytes
//! cell byte = terrain (bits 0-2) | blue (bit 3) | bails (bits 4-7)
//! ```

use events::{Cell, MAX_PLAYERS};

use super::{Field, Map, MapError, Terrain, MAX_SIZE, MIN_SIZE};

const MAGIC: &[u8; 7] = b"CNITMAP";
const VERSION: u8 = 1;

impl Map {
    /// Encodes the map (terrain, tiberium, starts, fields).
    pub fn save(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() + 64);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.push(self.starts.len() as u8);
        for c in &self.starts {
            put_cell(&mut out, *c);
        }
        out.extend_from_slice(&(self.fields.len() as u16).to_le_bytes());
        for f in &self.fields {
            out.push(u8::from(f.blue));
            out.extend_from_slice(&(f.cells.len() as u32).to_le_bytes());
            for c in &f.cells {
                put_cell(&mut out, *c);
            }
        }
        let (t, b, bl) = (self.terrain_grid(), self.bails_grid(), self.blue_grid());
        for i in 0..self.len() {
            out.push(t[i].code() | ((bl[i] & 1) << 3) | (b[i].min(15) << 4));
        }
        out
    }

    /// Decodes and validates a map file. The bytes come from outside: every length,
    /// coordinate and code is checked, nothing panics.
    pub fn load(bytes: &[u8]) -> Result<Map, MapError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(MapError::Corrupt("bad magic".into()));
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(MapError::Version(version));
        }
        let size = r.u16()?;
        if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
            return Err(MapError::BadSize {
                size,
                min: MIN_SIZE,
                max: MAX_SIZE,
            });
        }
        let in_map = |c: Cell| c.x < size && c.y < size;
        let nstarts = usize::from(r.u8()?);
        if nstarts > MAX_PLAYERS {
            return Err(MapError::Corrupt(format!("{nstarts} starts")));
        }
        let mut starts = Vec::with_capacity(nstarts);
        for _ in 0..nstarts {
            let c = r.cell()?;
            if !in_map(c) {
                return Err(MapError::Corrupt("start outside the map".into()));
            }
            starts.push(c);
        }
        let ncells = usize::from(size) * usize::from(size);
        let nfields = usize::from(r.u16()?);
        let mut fields = Vec::with_capacity(nfields.min(1024));
        let mut seen = vec![false; ncells];
        for id in 0..nfields {
            let blue = r.u8()? != 0;
            let n = r.u32()? as usize;
            if n > ncells {
                return Err(MapError::Corrupt("field larger than the map".into()));
            }
            let mut cells = Vec::with_capacity(n);
            for _ in 0..n {
                let c = r.cell()?;
                if !in_map(c) {
                    return Err(MapError::Corrupt("field cell outside the map".into()));
                }
                let i = usize::from(c.y) * usize::from(size) + usize::from(c.x);
                if std::mem::replace(&mut seen[i], true) {
                    return Err(MapError::Corrupt("cell in two fields".into()));
                }
                cells.push(c);
            }
            fields.push(Field {
                id: id as u16,
                cells,
                blue,
            });
        }
        let grid = r.take(ncells)?;
        if r.at != bytes.len() {
            return Err(MapError::Corrupt("trailing bytes".into()));
        }
        let mut terrain = Vec::with_capacity(ncells);
        let mut bails = Vec::with_capacity(ncells);
        let mut blue = Vec::with_capacity(ncells);
        for &b in grid {
            let t = Terrain::from_code(b & 7)
                .ok_or_else(|| MapError::Corrupt(format!("terrain code {}", b & 7)))?;
            terrain.push(t);
            bails.push(b >> 4);
            blue.push(b & 8 != 0);
        }
        Ok(Map::from_parts(size, starts, fields, terrain, bails, blue))
    }
}

fn put_cell(out: &mut Vec<u8>, c: Cell) {
    out.extend_from_slice(&c.x.to_le_bytes());
    out.extend_from_slice(&c.y.to_le_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MapError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| MapError::Corrupt("truncated".into()))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, MapError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, MapError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, MapError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn cell(&mut self) -> Result<Cell, MapError> {
        Ok(Cell::new(self.u16()?, self.u16()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut m = Map::blank(16);
        m.starts = vec![Cell::new(2, 2), Cell::new(13, 13)];
        m.set_terrain(Cell::new(7, 7), Terrain::Water);
        m.set_bails(Cell::new(4, 9), 12, true);
        m.set_bails(Cell::new(5, 9), 3, true);
        let bytes = m.save();
        let back = Map::load(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.hash(), m.hash());
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let m = Map::blank(16);
        let bytes = m.save();
        for cut in 0..bytes.len() {
            assert!(Map::load(&bytes[..cut]).is_err());
        }
        let mut bad = bytes.clone();
        bad[7] = 9;
        assert_eq!(Map::load(&bad), Err(MapError::Version(9)));
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] = 7;
        assert!(Map::load(&bad).is_err());
        let mut long = bytes;
        long.push(0);
        assert!(Map::load(&long).is_err());
    }
}
