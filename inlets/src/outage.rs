//! For the connectors' tests of a server that goes away mid-run and comes
//! back: a link whose inlet reaches its server through a `TcpProxy`,
//! driven through an outage while more data arrives on the server.

use std::future::Future;
use std::time::{Duration, Instant};

use databay_component::testing::TcpProxy;
use databay_core::Link;
use databay_core::testing::CollectOutlet;

/// Transfers until `out` holds `n` records (failures allowed meanwhile),
/// failing the test after 30 s.
pub(crate) async fn transfer_until(link: &Link, out: &CollectOutlet, n: usize, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while out.len() < n {
        if let Err(e) = link.transfer().await {
            last = e.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{when}: {} of {n} records within 30s (last error: {last})",
            out.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `link` (the inlet under test, reaching its server through
/// `proxy`, into `out`) and takes the `before` records already on the
/// server; cuts the proxy and checks that a transfer fails within 5 s
/// (its error is returned), unless `reports` is false (an inlet fed by a
/// subscription only sees nothing new); runs `meanwhile`, which adds `during` records
/// on the server itself; restores the proxy and checks that the link
/// recovers by itself and delivers them, with no restart of anything.
pub(crate) async fn through_an_outage(
    link: &Link,
    out: &CollectOutlet,
    proxy: &TcpProxy,
    before: usize,
    reports: bool,
    meanwhile: impl Future<Output = usize>,
) -> Option<String> {
    link.start().await.unwrap_or_else(|e| panic!("start: {e}"));
    transfer_until(link, out, before, "before the outage").await;
    proxy.cut().await;
    // A client may take a moment to notice its connection is gone.
    let noticed = Instant::now() + Duration::from_secs(5);
    let down = loop {
        match link.transfer().await {
            Err(e) => break Some(e.to_string()),
            Ok(_) if !reports => break None,
            Ok(report) => assert!(
                Instant::now() < noticed,
                "pulls while the server is away succeed: {report:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let during = meanwhile.await;
    proxy
        .restore()
        .await
        .unwrap_or_else(|e| panic!("restoring the proxy: {e}"));
    transfer_until(link, out, before + during, "after the server came back").await;
    // Nothing more than that: nothing was delivered twice.
    link.transfer().await.ok();
    assert_eq!(out.len(), before + during, "{:?}", out.payloads());
    assert!(link.shutdown().await.is_empty());
    down
}
