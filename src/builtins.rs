//! The component crates built into the daemon, one line each (as
//! Telegraf's `plugins/inputs/all` lists its inputs), each behind the cargo
//! feature of the same name. A component's options, factory, sample and
//! README live in its own folder in its crate; adding one touches that
//! folder and its crate's `register`, never this file.

use databay_component::Registry;

/// A registry holding every built-in component type.
///
/// ```
/// use databay::Kind;
/// let registry = databay::builtins();
/// assert!(registry.names(Kind::Inlet).contains(&"file"));
/// ```
pub fn builtins() -> Registry {
    let mut registry = Registry::new();
    #[cfg(feature = "inlets")]
    databay_inlets::register(&mut registry);
    #[cfg(feature = "outlets")]
    databay_outlets::register(&mut registry);
    #[cfg(feature = "processors")]
    databay_processors::register(&mut registry);
    registry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;
    use crate::config::Config;
    use std::path::Path;

    /// Every sample parses, names its own type, and loads as part of a link.
    #[test]
    fn every_sample_loads_and_validates() {
        let registry = builtins();
        let components = registry.components();
        assert!(components.len() >= 7);
        for c in components {
            let table: toml::Table = toml::from_str(&c.sample)
                .unwrap_or_else(|e| panic!("{} {}: sample does not parse: {e}", c.kind, c.name));
            assert_eq!(
                table.get("type").and_then(|t| t.as_str()),
                Some(c.name.as_str()),
                "{} {}: sample's type",
                c.kind,
                c.name
            );
            let indented = c.sample.clone();
            let text = match c.kind {
                Kind::Inlet => format!(
                    "[[link]]\nname = \"l\"\nevery = \"1s\"\n[[link.inlet]]\n{indented}\n[[link.outlet]]\ntype = \"null\"\n"
                ),
                Kind::Outlet => format!(
                    "[[link]]\nname = \"l\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"null\"\n[[link.outlet]]\n{indented}\n"
                ),
                Kind::Processor => format!(
                    "[[link]]\nname = \"l\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"null\"\n[[link.processor]]\n{indented}\n[[link.outlet]]\ntype = \"null\"\n"
                ),
                Kind::Grouper => format!(
                    "[[link]]\nname = \"l\"\nevery = \"1s\"\n[[link.inlet]]\ntype = \"null\"\n[[link.grouper]]\n{indented}\n[[link.outlet]]\ntype = \"null\"\n"
                ),
            };
            if let Err(e) = Config::parse(Path::new("sample.toml"), &text, &registry, &|_| None) {
                panic!("{} {}: sample does not validate:\n{e}", c.kind, c.name);
            }
        }
    }
}
