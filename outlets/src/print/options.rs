//! The `print` outlet's TOML face.

use databay_component::{BuildContext, Registry};
use serde::Deserialize;

use super::{PrintOutlet, SAMPLE};

/// Options of `type = "print"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintOptions {
    /// Print only the payload, as JSON (default false).
    #[serde(default)]
    pub only_payload: bool,
    /// Leave out the `{update}` prefix (default false).
    #[serde(default)]
    pub skip_update: bool,
}

pub(crate) fn register(registry: &mut Registry) {
    registry.outlet(
        "print",
        "Prints every record to standard output.",
        SAMPLE,
        |o: PrintOptions, _: &BuildContext| {
            Ok(PrintOutlet::new()
                .only_payload(o.only_payload)
                .skip_update(o.skip_update))
        },
    );
}

#[cfg(test)]
mod tests {
    use databay_component::Kind;
    use databay_component::testing::assert_registered_documented;

    #[test]
    fn sample_and_readme_match_the_options() {
        let readme = include_str!("README.md");
        assert_registered_documented(super::register, Kind::Outlet, "print", readme);
    }
}
