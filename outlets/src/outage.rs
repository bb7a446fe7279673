//! For the connectors' tests of a server that goes away mid-run and comes
//! back: a source of numbered records that gives a rolled-back record
//! again, and a link driven through an outage of its outlet's server (a
//! `TcpProxy` in front of it cut, then restored).

use std::time::{Duration, Instant};

use databay_core::{BoxError, Inlet, Link, Pull, Update, async_trait};
use serde_json::json;

use databay_component::testing::TcpProxy;

/// `{"n": 0}`, `{"n": 1}`, ...: one record per pull, the next only once
/// the transfer that carried it was committed.
#[derive(Debug, Default)]
pub(crate) struct Sequence {
    next: u64,
}

#[async_trait]
impl Inlet for Sequence {
    async fn pull(&mut self, _update: &Update) -> Result<Pull, BoxError> {
        Ok(Pull::value(json!({"n": self.next})))
    }

    async fn commit(&mut self, _update: &Update) -> Result<(), BoxError> {
        self.next += 1;
        Ok(())
    }
}

/// How many records [`through_an_outage`] has the link deliver.
pub(crate) const DELIVERED: u64 = 4;

/// Starts `link` (a [`Sequence`] into the outlet under test, which reaches
/// its server through `proxy`), delivers two records, cuts the proxy and
/// checks that a transfer fails, restores it and checks that the link
/// recovers by itself: two more records delivered, with no restart of
/// anything. Records `0..DELIVERED` are then on the server. Returns the
/// error of the transfer during the outage.
pub(crate) async fn through_an_outage(link: &Link, proxy: &TcpProxy) -> String {
    link.start().await.unwrap_or_else(|e| panic!("start: {e}"));
    for _ in 0..2 {
        link.transfer()
            .await
            .unwrap_or_else(|e| panic!("before the outage: {e}"));
    }
    proxy.cut().await;
    let down = match link.transfer().await {
        Ok(report) => panic!("a push while the server is away succeeded: {report:?}"),
        Err(e) => e.to_string(),
    };
    proxy
        .restore()
        .await
        .unwrap_or_else(|e| panic!("restoring the proxy: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut delivered = 2;
    while delivered < DELIVERED {
        match link.transfer().await {
            Ok(_) => delivered += 1,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "not recovered 30s after the server came back: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(link.shutdown().await.is_empty());
    down
}
