//! Session tracking with `stateful_flat_map` (Bytewax's session tracker):
//! each user's events are kept until a `session_end` event, which emits a
//! summary and discards the user's state (the mapper returns `None`), so a
//! finished session holds no memory:
//!
//! ```text
//! sessions.1 ada {"duration":40,"event_count":3}
//! sessions.2 bob {"duration":25,"event_count":2}
//! live sessions: 0
//! ```
//!
//! Run it with `cargo run --example stateful_sessions`.

use std::collections::VecDeque;
use std::error::Error;
use std::time::Duration;

use databay_core::stateful::{KEY_META, key_text, stateful_flat_map};
use databay_core::{BoxError, Inlet, Link, Outlet, Pull, Record, Update, async_trait};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

struct Script(VecDeque<Vec<Value>>);

#[async_trait]
impl Inlet for Script {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        Ok(Pull::values(self.0.pop_front().unwrap_or_default()))
    }
}

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

/// One user's open session.
#[derive(Serialize, Deserialize)]
struct Session {
    start: i64,
    events: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let event = |user: &str, at: i64, kind: &str| json!({"user": user, "at": at, "type": kind});
    let script = Script(VecDeque::from([
        vec![
            event("ada", 0, "login"),
            event("bob", 5, "login"),
            event("ada", 20, "click"),
        ],
        vec![event("ada", 40, "session_end")],
        vec![event("bob", 30, "session_end")],
    ]));
    let sessions = stateful_flat_map(
        |r: &Record| key_text(r.payload.get("user")),
        |state: Option<Session>, event: Value| {
            let at = event["at"].as_i64().unwrap_or(0);
            let mut session = state.unwrap_or(Session {
                start: at,
                events: 0,
            });
            session.events += 1;
            if event["type"] == "session_end" {
                let summary =
                    json!({"duration": at - session.start, "event_count": session.events});
                (None, vec![summary])
            } else {
                (Some(session), vec![])
            }
        },
    );
    let link = Link::builder("sessions")
        .inlet(script)
        .processor(sessions)
        .outlet(Print)
        .every(Duration::from_secs(1))
        .build()?;
    let mut keys = 0;
    for _ in 0..3 {
        link.transfer().await?;
        keys = link
            .processor_gauges()
            .first()
            .and_then(|p| p.gauges.iter().find(|g| g.name == "keys").map(|g| g.value))
            .unwrap_or(0);
    }
    println!("live sessions: {keys}");
    Ok(())
}
