//! The browser client, compiled into the binary (no build step, no files on disk).

/// Every client file: name, content type, content.
pub const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../client/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../client/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/app.js"),
    ),
    (
        "lobby.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/lobby.js"),
    ),
    (
        "net.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/net.js"),
    ),
    (
        "state.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/state.js"),
    ),
    (
        "render.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/render.js"),
    ),
    (
        "sprites.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/sprites.js"),
    ),
    (
        "terrain.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/terrain.js"),
    ),
    (
        "effects.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/effects.js"),
    ),
    (
        "input.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/input.js"),
    ),
    (
        "sidebar.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/sidebar.js"),
    ),
    (
        "players-panel.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/players-panel.js"),
    ),
    (
        "score.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/score.js"),
    ),
    (
        "hud.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/hud.js"),
    ),
    (
        "panel.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/panel.js"),
    ),
    (
        "alerts.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/alerts.js"),
    ),
    (
        "hotkeys.js",
        "text/javascript; charset=utf-8",
        include_str!("../client/hotkeys.js"),
    ),
];

/// A client file by name.
pub fn get(name: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, c)| (*t, *c))
}
