//! The `null` outlet's TOML face: no options of its own.

use databay_component::{BuildContext, Registry};
use serde::Deserialize;

use super::{NullOutlet, SAMPLE};

/// Options of `type = "null"`: none (a typo'd key is an error).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullOutletOptions {}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "null",
        "Accepts every record and discards it.",
        SAMPLE,
        |_: NullOutletOptions, _: &BuildContext| Ok(NullOutlet::new()),
    );
}

#[cfg(test)]
mod tests {
    use databay_component::Kind;
    use databay_component::testing::assert_registered_documented;

    #[test]
    fn sample_and_readme_match_the_options() {
        let readme = include_str!("README.md");
        assert_registered_documented(super::register, Kind::Outlet, "null", readme);
    }
}
