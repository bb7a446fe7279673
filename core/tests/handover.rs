//! Processors carried over to a replacement link: a spared processor is not
//! ended by the old link's flush, takes what the processors before it
//! release, and goes on counting in the new link with its state and
//! timers; the others end as usual.

use std::time::Duration;

use async_trait::async_trait;
use databay_core::stateful::{self, key_text};
use databay_core::testing::{CollectOutlet, StaticInlet};
use databay_core::{BoxError, Context, Link, Processor, Record, Trigger};
use serde_json::{Value, json};

fn by_user(r: &Record) -> Result<String, String> {
    key_text(r.payload.get("user"))
}

/// Holds every record until the stream ends, as a buffer does.
struct Hold(Vec<Record>);

#[async_trait]
impl Processor for Hold {
    async fn process(
        &mut self,
        records: Vec<Record>,
        cx: &Context<'_>,
    ) -> Result<Vec<Record>, BoxError> {
        self.0.extend(records);
        Ok(match cx.trigger {
            Trigger::Flush => std::mem::take(&mut self.0),
            _ => Vec::new(),
        })
    }
}

/// `user: a` twice a pull, through `hold` (every other transfer's worth
/// held back) and `count` (per user, at the end of the stream).
fn link(name: &str, out: &CollectOutlet) -> Link {
    Link::builder(name)
        .inlet(StaticInlet::values([
            json!({"user": "a"}),
            json!({"user": "a"}),
        ]))
        .named_processor("hold", Hold(Vec::new()))
        .named_processor("count", stateful::count_final(by_user))
        .outlet(out.clone())
        .every(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_spared_operator_carries_its_state_to_the_replacement() {
    let out = CollectOutlet::new();
    let old = link("old", &out);
    for _ in 0..3 {
        old.transfer().await.unwrap();
    }
    old.spare_on_flush(["count"]);
    old.flush().await.unwrap();
    // `hold` released its 6 records into `count`, which did not end.
    assert_eq!(out.payloads(), Vec::<Value>::new());

    let new = link("new", &out);
    let swapped = old
        .swap_processors(&new, &["count".to_owned(), "missing".to_owned()])
        .await;
    assert_eq!(swapped, ["count"]);
    let gauges = new.processor_gauges();
    let keys = gauges
        .iter()
        .find(|g| g.name == "count")
        .and_then(|g| g.gauges.iter().find(|g| g.name == "keys"))
        .map(|g| g.value);
    assert_eq!(keys, Some(1), "the replacement shows the carried state");

    new.transfer().await.unwrap();
    new.flush().await.unwrap();
    // 6 from the old link and 2 from the new one.
    assert_eq!(out.payloads(), [json!(8)]);
}

#[tokio::test]
async fn without_sparing_a_flush_ends_every_operator() {
    let out = CollectOutlet::new();
    let old = link("old", &out);
    for _ in 0..3 {
        old.transfer().await.unwrap();
    }
    old.flush().await.unwrap();
    assert_eq!(out.payloads(), [json!(6)]);
}

#[tokio::test]
async fn swapping_back_restores_the_old_link() {
    let out = CollectOutlet::new();
    let old = link("old", &out);
    old.transfer().await.unwrap();
    old.spare_on_flush(["count"]);
    let new = link("new", &out);
    let names = ["count".to_owned()];
    assert_eq!(old.swap_processors(&new, &names).await, ["count"]);
    // The replacement could not start: the state goes back.
    assert_eq!(new.swap_processors(&old, &names).await, ["count"]);
    old.spare_on_flush(Vec::<String>::new());
    old.transfer().await.unwrap();
    old.flush().await.unwrap();
    assert_eq!(out.payloads(), [json!(4)]);
}

#[tokio::test]
async fn a_name_used_twice_is_not_swapped() {
    let out = CollectOutlet::new();
    let twice = |name: &str| {
        Link::builder(name)
            .inlet(StaticInlet::values([json!({"user": "a"})]))
            .named_processor("count", stateful::count_final(by_user))
            .named_processor("count", stateful::count_final(by_user))
            .outlet(out.clone())
            .every(Duration::from_secs(60))
            .build()
            .unwrap()
    };
    let (a, b) = (twice("a"), twice("b"));
    assert!(
        a.swap_processors(&b, &["count".to_owned()])
            .await
            .is_empty()
    );
    assert_eq!(a.processor_names().await, ["count", "count"]);
}
