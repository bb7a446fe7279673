//! The `random_int` inlet's TOML face.

use databay_component::{BuildContext, OptionError, Registry};
use serde::Deserialize;

use super::{DEFAULT_MAX, DEFAULT_MIN, RandomIntInlet, SAMPLE};

/// Options of `type = "random_int"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomIntOptions {
    /// Lower bound, included (default 0).
    pub min: Option<i64>,
    /// Upper bound, included (default 100); not below `min`.
    pub max: Option<i64>,
    /// Seed for a reproducible sequence (default: random).
    pub seed: Option<u64>,
}

pub(crate) fn register(registry: &mut Registry) {
    registry.inlet(
        "random_int",
        "One random integer in [min, max] per transfer.",
        SAMPLE,
        |o: RandomIntOptions, _: &BuildContext| {
            let min = o.min.unwrap_or(DEFAULT_MIN);
            let max = o.max.unwrap_or(DEFAULT_MAX);
            // An empty range is the fault of whichever bound was written.
            let blamed = if o.max.is_some() { "max" } else { "min" };
            let inlet = RandomIntInlet::new(min, max).map_err(OptionError::of(blamed))?;
            Ok(match o.seed {
                Some(seed) => inlet.seed(seed),
                None => inlet,
            })
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
        assert_registered_documented(super::register, Kind::Inlet, "random_int", readme);
    }
}
