//! The addresses a process bound, written to a file for whoever started it: with port 0 in
//! `--ops-addr` (or the gateway's `--listen`) the OS picks a free port, and a test harness
//! or supervisor reads here which one, instead of picking a port itself by binding and
//! dropping it (which another process can take in between).

use std::net::SocketAddr;
use std::path::Path;

/// Writes `{"name": "host:port", ...}` to `path`: first to a sibling temporary file, then
/// renamed over `path`, so a reader polling for the file never sees half of it.
pub fn write(path: &Path, addrs: &[(&str, SocketAddr)]) -> std::io::Result<()> {
    let object: serde_json::Map<String, serde_json::Value> = addrs
        .iter()
        .map(|(name, addr)| (name.to_string(), addr.to_string().into()))
        .collect();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, serde_json::Value::Object(object).to_string())?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_holds_every_address_by_name() {
        let path = std::env::temp_dir().join(format!("cnit-addr-file-{}", std::process::id()));
        let ops: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let listen: SocketAddr = "[::1]:80".parse().unwrap();
        write(&path, &[("ops", ops), ("listen", listen)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ops"], "127.0.0.1:4321");
        assert_eq!(v["listen"], "[::1]:80");
    }
}
