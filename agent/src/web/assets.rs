//! The dashboard's assets, embedded in the binary: one stylesheet and one script.

/// `GET /assets/dashboard.css`.
pub const CSS: &str = include_str!("assets/dashboard.css");

/// `GET /assets/dashboard.js`: live updates only; every page works without it.
pub const JS: &str = include_str!("assets/dashboard.js");

/// The asset at `name`, with its content type.
pub fn get(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "dashboard.css" => Some(("text/css; charset=utf-8", CSS)),
        "dashboard.js" => Some(("text/javascript; charset=utf-8", JS)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_assets_load_nothing_from_elsewhere() {
        for (name, text) in [("css", super::CSS), ("js", super::JS)] {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{name}"
            );
            assert!(
                !text.contains("@import") && !text.contains("url("),
                "{name}"
            );
        }
        assert!(super::get("dashboard.css").is_some());
        assert!(super::get("../Cargo.toml").is_none());
    }
}
