//! A running count per key with `stateful_map` (Bytewax's "running count"
//! example): the mapper gets the key's state (`None` the first time) and the
//! payload, and returns the new state and what to emit. The state lives
//! across transfers, so the counts carry on from one transfer to the next:
//!
//! ```text
//! running_count.0 a 1
//! running_count.0 b 1
//! running_count.0 a 2
//! running_count.1 b 2
//! running_count.1 c 1
//! running_count.2 a 3
//! ```
//!
//! Run it with `cargo run --example stateful_running_count`.

use std::collections::VecDeque;
use std::error::Error;
use std::time::Duration;

use databay_core::stateful::{KEY_META, key_text, stateful_map};
use databay_core::{BoxError, Inlet, Link, Outlet, Pull, Record, Update, async_trait};
use serde_json::{Value, json};

/// Produces the next batch of a script on each pull.
struct Script(VecDeque<Vec<Value>>);

#[async_trait]
impl Inlet for Script {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        Ok(Pull::values(self.0.pop_front().unwrap_or_default()))
    }
}

/// Prints `update key payload` for each record.
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let events = |users: &[&str]| users.iter().map(|u| json!({ "user": u })).collect();
    let script = Script(VecDeque::from([
        events(&["a", "b", "a"]),
        events(&["b", "c"]),
        events(&["a"]),
    ]));
    let counts = stateful_map(
        |r: &Record| key_text(r.payload.get("user")),
        |count: Option<u64>, _event: Value| {
            let count = count.unwrap_or(0) + 1;
            (Some(count), json!(count))
        },
    );
    let link = Link::builder("running_count")
        .inlet(script)
        .processor(counts)
        .outlet(Print)
        .every(Duration::from_secs(1))
        .build()?;
    for _ in 0..3 {
        link.transfer().await?;
    }
    Ok(())
}
