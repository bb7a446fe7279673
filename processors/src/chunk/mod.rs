//! `chunk`: a grouper splitting every batch into chunks of at most `size`
//! records, in order.

use databay_core::{BoxError, Grouper, Record};
use serde::Deserialize;

use databay_component::{BuildContext, OptionError, Registry};

const SUMMARY: &str = "Splits batches into chunks of at most `size` records.";
const SAMPLE: &str = include_str!("sample.toml");

pub(crate) fn register(registry: &mut Registry) {
    registry.grouper(
        "chunk",
        SUMMARY,
        SAMPLE,
        |o: ChunkOptions, _: &BuildContext| Ok(o.build()?),
    );
}

/// Options of the `chunk` grouper.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkOptions {
    /// The largest chunk.
    pub size: usize,
}

impl ChunkOptions {
    /// Builds the grouper.
    pub fn build(self) -> Result<Chunk, OptionError> {
        Chunk::new(self.size)
    }
}

/// Splits every batch into chunks of at most `size` records, keeping order.
///
/// ```
/// use databay_processors::Chunk;
/// use databay_core::{Grouper, Record};
///
/// let mut chunk = Chunk::new(2).unwrap();
/// let batch: Vec<Record> = (0..5).map(Record::new).collect();
/// let sizes: Vec<usize> = chunk.group(vec![batch]).unwrap().iter().map(Vec::len).collect();
/// assert_eq!(sizes, [2, 2, 1]);
/// ```
#[derive(Debug, Clone)]
pub struct Chunk {
    size: usize,
}

impl Chunk {
    /// A `chunk` of at most `size` records; `size` must be at least 1.
    pub fn new(size: usize) -> Result<Self, OptionError> {
        if size == 0 {
            return Err(OptionError::new("size", "must be at least 1"));
        }
        Ok(Chunk { size })
    }

    /// The largest chunk.
    pub fn size(&self) -> usize {
        self.size
    }
}

impl Grouper for Chunk {
    fn group(&mut self, batches: Vec<Vec<Record>>) -> Result<Vec<Vec<Record>>, BoxError> {
        let mut out = Vec::with_capacity(batches.len());
        for batch in batches {
            // A batch that fits (an empty one included: the link still
            // shows it to outlet processors) is passed on as it is.
            if batch.len() <= self.size {
                out.push(batch);
                continue;
            }
            let mut records = batch.into_iter();
            while !records.as_slice().is_empty() {
                out.push(records.by_ref().take(self.size).collect());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_and_readme_match_the_options() {
        crate::tests::assert_documented(
            databay_component::Kind::Grouper,
            "chunk",
            include_str!("README.md"),
        );
    }
    use crate::tests::{build_grouper, grouper_error, sample_options};
    use serde_json::{Value, json};

    fn batch(range: std::ops::Range<u64>) -> Vec<Record> {
        range.map(Record::new).collect()
    }

    fn shape(batches: &[Vec<Record>]) -> Vec<Vec<Value>> {
        batches
            .iter()
            .map(|b| b.iter().map(|r| r.payload.clone()).collect())
            .collect()
    }

    #[test]
    fn sample_is_valid() {
        let o: ChunkOptions = sample_options(SAMPLE);
        assert_eq!(o.size, 500);
        o.build().unwrap();
    }

    #[test]
    fn splits_in_order_and_keeps_batch_boundaries() {
        let mut chunk = Chunk::new(2).unwrap();
        let out = chunk
            .group(vec![batch(0..5), batch(5..7), vec![], batch(7..8)])
            .unwrap();
        assert_eq!(
            shape(&out),
            vec![
                vec![json!(0), json!(1)],
                vec![json!(2), json!(3)],
                vec![json!(4)],
                vec![json!(5), json!(6)],
                vec![],
                vec![json!(7)],
            ]
        );
        let mut one = Chunk::new(1).unwrap();
        assert_eq!(one.group(vec![batch(0..3)]).unwrap().len(), 3);
        assert_eq!(one.size(), 1);
    }

    #[test]
    fn keeps_metadata() {
        let mut chunk = Chunk::new(1).unwrap();
        let out = chunk
            .group(vec![vec![
                Record::new(1).with_meta("k", "v"),
                Record::new(2),
            ]])
            .unwrap();
        assert_eq!(out[0][0].meta("k"), Some(&json!("v")));
    }

    #[test]
    fn bad_options_are_named() {
        assert_eq!(
            Chunk::new(0).unwrap_err().to_string(),
            "option `size`: must be at least 1"
        );
        let e = toml::from_str::<ChunkOptions>("").unwrap_err().to_string();
        assert!(e.contains("missing field `size`"), "{e}");
        let e = toml::from_str::<ChunkOptions>("size = 1\nsizes = 2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `sizes`"), "{e}");
        let e = toml::from_str::<ChunkOptions>("size = -2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("size"), "{e}");
    }

    #[test]
    fn builds_through_the_registry() {
        let mut g = build_grouper("chunk", "size = 3").unwrap();
        assert_eq!(g.group(vec![batch(0..7)]).unwrap().len(), 3);
        let e = grouper_error("chunk", "size = 0");
        assert!(e.contains("option `size`: must be at least 1"), "{e}");
    }
}
