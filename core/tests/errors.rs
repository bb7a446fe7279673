//! How errors read: node and transfer errors name the link, the update or
//! hook, and the node, and keep their sources.

mod common;

use std::time::Duration;

use common::{Behaviour, Probe};
use databay_core::{Failure, InletHandle, Link, NodeError, NodeKind, TransferError};

/// A link whose tag starts with `on_` (`on_call`, `on_prem_sync`): its
/// transfer errors must read as transfer errors, not as lifecycle hooks.
#[tokio::test]
async fn node_error_display_for_a_link_named_on_something() {
    let (probe, _) = Probe::with(Behaviour::Fail, Duration::ZERO);
    let link = Link::builder("on_call").inlet(probe).build().unwrap();
    let err = link.transfer().await.unwrap_err();
    let text = err.errors[0].to_string();
    assert_eq!(
        text,
        "link `on_call`, update on_call.0, inlet `Probe`: probe failed on pull 1"
    );
}

#[test]
fn node_error_display_for_hooks_and_failures() {
    let hook = NodeError::new(
        "l",
        "on_shutdown",
        NodeKind::OutletProcessor,
        "csv/buffer",
        Failure::Panic("boom".into()),
    );
    assert_eq!(
        hook.to_string(),
        "link `l`, outlet processor `csv/buffer`, on_shutdown: panicked: boom"
    );
    let timeout = NodeError::new(
        "l",
        "l.7",
        NodeKind::Grouper,
        "groupers[0]",
        Failure::Timeout(Duration::from_millis(1500)),
    );
    assert_eq!(
        timeout.to_string(),
        "link `l`, update l.7, grouper `groupers[0]`: timed out after 1.5s"
    );
    assert!(std::error::Error::source(&timeout).is_some());
}

/// Every inlet of a failing transfer is reported, the first in the
/// message, the count of the others after it.
#[tokio::test]
async fn transfer_error_with_many_errors() {
    let mut builder = Link::builder("many");
    for i in 0..3 {
        let (p, _) = Probe::with(Behaviour::Fail, Duration::ZERO);
        builder = builder.inlet(InletHandle::builder(p).name(format!("in{i}")).build());
    }
    let link = builder.build().unwrap();
    let err: TransferError = link.transfer().await.unwrap_err();
    assert_eq!(err.errors.len(), 3);
    assert_eq!(
        err.to_string(),
        "transfer many.0 of link `many` failed: inlet `in0`: probe failed on pull 1 (and 2 more)"
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("inlet `in0`"), "{source}");
    let stats = link.stats();
    assert_eq!((stats.transfers_failed, stats.errors), (1, 3));
    assert!(stats.last_error.unwrap().contains("(and 2 more)"));

    let single = Link::builder("one")
        .inlet(Probe::with(Behaviour::Panic, Duration::ZERO).0)
        .build()
        .unwrap()
        .transfer()
        .await
        .unwrap_err();
    assert!(!single.to_string().contains("more"), "{single}");
    assert!(
        single
            .to_string()
            .ends_with("panicked: probe panicked on pull 1")
    );
}
