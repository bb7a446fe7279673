//! Where records go other than to every outlet: a route to one outlet, and
//! the link's dead-letter outlet.
//!
//! **Routes.** A record whose metadata holds [`ROUTE_KEY`] (`__route__`)
//! with the name of one of the link's outlets goes to that outlet alone.
//! Outlets added with [`LinkBuilder::routed_outlet`] get nothing else:
//! only the records routed to them (a window's late records, say). A
//! record routed to an outlet the link does not have is refused like an
//! outlet's reject: counted in `records_rejected`, logged, and
//! dead-lettered when the link has a dead-letter outlet.
//!
//! **Dead letters.** With a dead-letter outlet
//! ([`LinkBuilder::dead_letter`]), the records an outlet rejected and the
//! batches whose push failed for good (after the outlet's
//! [`retry`](crate::OutletBuilder::retry) policy gave up) go to it instead
//! of failing the transfer. Each is a copy of the record as it was pushed,
//! with four local metadata entries: [`ERROR_KEY`] (why),
//! [`OUTLET_KEY`] (which outlet or outlet processor), [`UPDATE_KEY`] (the
//! transfer, `tag.index`) and [`ATTEMPTS_KEY`] (pushes tried). The
//! transfer commits once the dead-letter outlet accepted them; if it fails
//! (or rejects any), the transfer fails and nothing is committed, so the
//! records are read again (at least once). Counted as
//! `records_dead_lettered`, per link and per outlet.
//!
//! ```
//! use databay_core::routing::{ERROR_KEY, OUTLET_KEY, ROUTE_KEY};
//! use databay_core::testing::{CollectOutlet, StaticInlet};
//! use databay_core::{async_trait, BoxError, Link, Outlet, OutletHandle, Record, Rejected, Update};
//! use serde_json::json;
//!
//! /// Writes numbers, refuses anything else.
//! struct Numbers(CollectOutlet);
//!
//! #[async_trait]
//! impl Outlet for Numbers {
//!     async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
//!         let mut rejected = Rejected::new();
//!         let good: Vec<Record> = records.iter().enumerate()
//!             .filter(|(i, r)| { let ok = r.payload.is_number(); if !ok { rejected.reject(*i, "not a number") } ok })
//!             .map(|(_, r)| r.clone())
//!             .collect();
//!         self.0.push(&good, update).await?;
//!         rejected.into_result()
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let (numbers, dead, odd) = (CollectOutlet::new(), CollectOutlet::new(), CollectOutlet::new());
//! let link = Link::builder("numbers")
//!     .inlet(StaticInlet::records(vec![
//!         Record::new(1),
//!         Record::new("two"),
//!         Record::new(3).with_meta(ROUTE_KEY, "odd"),
//!     ]))
//!     .outlet(OutletHandle::builder(Numbers(numbers.clone())).name("numbers").build())
//!     .routed_outlet(OutletHandle::builder(odd.clone()).name("odd").build())
//!     .dead_letter(dead.clone())
//!     .build()
//!     .unwrap();
//! let report = link.transfer().await.unwrap();
//! assert_eq!(numbers.payloads(), [json!(1)]);
//! assert_eq!(odd.payloads(), [json!(3)]);
//! assert_eq!(dead.payloads(), [json!("two")]);
//! let letter = &dead.records()[0];
//! assert_eq!(letter.meta(OUTLET_KEY), Some(&json!("numbers")));
//! assert_eq!(letter.meta(ERROR_KEY), Some(&json!("not a number")));
//! assert_eq!(report.dead_lettered, 1);
//! # }
//! ```
//!
//! [`LinkBuilder::routed_outlet`]: crate::LinkBuilder::routed_outlet
//! [`LinkBuilder::dead_letter`]: crate::LinkBuilder::dead_letter

use serde_json::Value;

use crate::record::Record;
use crate::update::Update;

/// Metadata key naming the one outlet a record goes to.
pub const ROUTE_KEY: &str = "__route__";

/// Dead letters: why the record was not delivered.
pub const ERROR_KEY: &str = "__error__";

/// Dead letters: the outlet (or `outlet/processor`) that did not take it.
pub const OUTLET_KEY: &str = "__outlet__";

/// Dead letters: the transfer it was part of (`tag.index`).
pub const UPDATE_KEY: &str = "__update__";

/// Dead letters: how many pushes were tried.
pub const ATTEMPTS_KEY: &str = "__attempts__";

/// A record's dead letter: a copy carrying why, where, when and how often.
pub(crate) fn dead_letter(
    record: &Record,
    error: &str,
    outlet: &str,
    update: &Update,
    attempts: u32,
) -> Record {
    let mut letter = record.clone();
    letter.set_meta(ERROR_KEY, error);
    letter.set_meta(OUTLET_KEY, outlet);
    letter.set_meta(UPDATE_KEY, update.to_string());
    letter.set_meta(ATTEMPTS_KEY, attempts);
    letter
}

/// Where a record is routed: `None` for every fan-out outlet, or the
/// outlet's name; an error for a route that is not a name.
pub(crate) fn route_of(record: &Record) -> Option<Result<&str, String>> {
    match record.meta(ROUTE_KEY)? {
        Value::String(name) => Some(Ok(name)),
        other => Some(Err(format!(
            "`{ROUTE_KEY}` must be the name of one of the link's outlets, not {other}"
        ))),
    }
}

/// A dead letter as one JSON object, for outlets that write payloads only
/// (a file, a table): `{"error", "outlet", "update", "attempts", "record"}`,
/// where `record` is the original payload. Records without dead-letter
/// metadata are left as they are. Use it as the dead-letter outlet's first
/// processor ([`OutletBuilder::processor`](crate::OutletBuilder::processor)).
///
/// ```
/// use databay_core::routing::{envelope, ERROR_KEY, OUTLET_KEY};
/// use databay_core::Record;
/// use serde_json::json;
///
/// let letter = Record::new(json!({"id": 7})).with_meta(ERROR_KEY, "duplicate key").with_meta(OUTLET_KEY, "db");
/// let wrapped = envelope(vec![letter]);
/// assert_eq!(wrapped[0].payload, json!({
///     "error": "duplicate key", "outlet": "db", "update": null, "attempts": null, "record": {"id": 7}
/// }));
/// ```
pub fn envelope(records: Vec<Record>) -> Vec<Record> {
    records
        .into_iter()
        .map(|mut r| {
            if r.meta(ERROR_KEY).is_none() {
                return r;
            }
            let field = |r: &Record, key: &str| r.meta(key).cloned().unwrap_or(Value::Null);
            let mut wrapped = serde_json::Map::new();
            wrapped.insert("error".into(), field(&r, ERROR_KEY));
            wrapped.insert("outlet".into(), field(&r, OUTLET_KEY));
            wrapped.insert("update".into(), field(&r, UPDATE_KEY));
            wrapped.insert("attempts".into(), field(&r, ATTEMPTS_KEY));
            wrapped.insert("record".into(), std::mem::take(&mut r.payload));
            r.payload = Value::Object(wrapped);
            r
        })
        .collect()
}
