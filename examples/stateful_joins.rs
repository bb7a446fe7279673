//! Joins of two inlets, `users` and `orders`, keyed by user (Bytewax's
//! inner, left and running joins). A record's side is the inlet that
//! produced it. The same three transfers go through three joins:
//!
//! - `complete` (inner join): a row as soon as both sides are there, then
//!   the key is forgotten;
//! - `final` (left/outer join): at the end of the stream, every key, with
//!   `null` for a side that never came;
//! - `running`: a row on every record, the missing side `null`.
//!
//! With `InsertMode::First` a side keeps its first value: Ada's second
//! order (7) changes no row, and the inner join holds it for a user record
//! that never comes again.
//!
//! ```text
//! inner   inner.1 {"orders":{"total":5,"user":"ada"},"users":{"name":"Ada","user":"ada"}}
//! left    left.3 {"orders":{"total":5,"user":"ada"},"users":{"name":"Ada","user":"ada"}}
//! left    left.3 {"orders":null,"users":{"name":"Bob","user":"bob"}}
//! running running.0 {"orders":null,"users":{"name":"Ada","user":"ada"}}
//! running running.1 {"orders":null,"users":{"name":"Bob","user":"bob"}}
//! running running.1 {"orders":{"total":5,"user":"ada"},"users":{"name":"Ada","user":"ada"}}
//! running running.2 {"orders":{"total":5,"user":"ada"},"users":{"name":"Ada","user":"ada"}}
//! ```
//!
//! Run it with `cargo run --example stateful_joins`.

use std::collections::VecDeque;
use std::error::Error;
use std::time::Duration;

use databay_core::stateful::{EmitMode, InsertMode, Join, join, key_text};
use databay_core::{BoxError, InletHandle, Link, Outlet, Pull, Record, Update, async_trait};
use serde_json::{Value, json};

struct Script(VecDeque<Vec<Value>>);

#[async_trait]
impl databay_core::Inlet for Script {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        Ok(Pull::values(self.0.pop_front().unwrap_or_default()))
    }
}

struct Print(&'static str);

#[async_trait]
impl Outlet for Print {
    async fn push(&mut self, records: &[Record], update: &Update) -> Result<(), BoxError> {
        for record in records {
            println!("{:<8}{update} {}", self.0, record.payload);
        }
        Ok(())
    }
}

fn link(name: &'static str, emit: EmitMode) -> Result<Link, Box<dyn Error>> {
    let users = Script(VecDeque::from([
        vec![json!({"user": "ada", "name": "Ada"})],
        vec![json!({"user": "bob", "name": "Bob"})],
    ]));
    let orders = Script(VecDeque::from([
        vec![],
        vec![json!({"user": "ada", "total": 5})],
        vec![json!({"user": "ada", "total": 7})],
    ]));
    let by_user = |r: &Record| key_text(r.payload.get("user"));
    Ok(Link::builder(name)
        .inlet(InletHandle::builder(users).name("users").build())
        .inlet(InletHandle::builder(orders).name("orders").build())
        .processor(join(
            by_user,
            Join::new(["users", "orders"])
                .insert_mode(InsertMode::First)
                .emit_mode(emit),
        ))
        .outlet(Print(name))
        .every(Duration::from_secs(1))
        .build()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    for (name, emit) in [
        ("inner", EmitMode::Complete),
        ("left", EmitMode::Final),
        ("running", EmitMode::Running),
    ] {
        let link = link(name, emit)?;
        for _ in 0..3 {
            link.transfer().await?;
        }
        link.flush().await?;
    }
    Ok(())
}
