//! Word count with `count_final` (Bytewax's `word_count`): a `flat_map`-like
//! processor splits lines into lower-cased words, and `count_final` keys
//! each word by itself and counts it. The counts come out at the end of the
//! stream (`flush`), in key order:
//!
//! ```text
//! word_count.1 a 3
//! word_count.1 is 2
//! word_count.1 rose 3
//! ```
//!
//! Run it with `cargo run --example stateful_word_count`.

use std::error::Error;
use std::time::Duration;

use databay_core::stateful::{KEY_META, count_final, key_text};
use databay_core::testing::StaticInlet;
use databay_core::{BoxError, Link, Outlet, Record, Update, async_trait};
use serde_json::Value;

struct Print;

#[async_trait]
impl Outlet for Print {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        for record in records {
            let key = record.meta(KEY_META).and_then(Value::as_str).unwrap_or("-");
            println!("{update} {key} {}", record.payload);
        }
        Ok(())
    }
}

/// One record per word of each line.
fn words(lines: Vec<Record>) -> Vec<Record> {
    lines
        .iter()
        .filter_map(|r| r.payload.as_str())
        .flat_map(|line| line.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(|w| Record::new(w.to_lowercase()))
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let link = Link::builder("word_count")
        .inlet(StaticInlet::values(["A rose is a rose", "is a Rose."]).times(1))
        .processor(words)
        .processor(count_final(|r: &Record| key_text(Some(&r.payload))))
        .outlet(Print)
        .every(Duration::from_secs(1))
        .build()?;
    link.transfer().await?;
    link.flush().await?;
    Ok(())
}
