//! An async client library as a source: a WebSocket stream as a
//! one-partition inlet, bridged with `batch_async` (the pattern of
//! Bytewax's "Custom IO Connectors" guide).
//!
//! The example starts its own WebSocket server on 127.0.0.1 that sends ten
//! JSON messages 30 ms apart and then closes. The source connects to it
//! when its partition is built; each `next_batch` gathers what arrives
//! within 100 ms (at most 100 messages) and never waits longer, so the
//! link's other work goes on. When the server closes the stream the
//! partition has ended, the link flushes and the example stops. It prints
//! (logs go to stderr):
//!
//! ```text
//! websocket.0 {"n":0}
//! ...
//! websocket.1 {"n":9}
//! ```
//!
//! Run it with `cargo run --example websocket_source`.

use std::error::Error;
use std::time::Duration;

use databay_core::source::{
    FixedPartitionedSource, PartitionedInlet, StatefulPartition, batch_async,
};
use databay_core::{BoxError, Link, Planner, Pull, Record, async_trait};
use databay_outlets::PrintOutlet;
use futures::{SinkExt, Stream, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// The messages of a WebSocket, as JSON values; a text frame that is not
/// JSON is an error that names it.
type Messages = std::pin::Pin<Box<dyn Stream<Item = Result<Value, BoxError>> + Send>>;

/// Wraps every async call of the client in one stream: connect, then
/// receive until the server closes.
async fn messages(url: String) -> Result<Messages, BoxError> {
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    Ok(Box::pin(socket.filter_map(|message| async move {
        match message {
            Ok(Message::Text(text)) => Some(
                serde_json::from_str(text.as_str())
                    .map_err(|e| format!("a message is not JSON ({e}): {text}").into()),
            ),
            Ok(Message::Binary(_)) => {
                Some(Err("a binary message; this source reads JSON text".into()))
            }
            Ok(_) => None, // pings, pongs, close frames
            Err(e) => Some(Err(e.into())),
        }
    })))
}

struct WebSocketPartition {
    messages: Messages,
}

#[async_trait]
impl StatefulPartition for WebSocketPartition {
    async fn next_batch(&mut self) -> Result<Pull, BoxError> {
        let batch = batch_async(&mut self.messages, Duration::from_millis(100), 100).await;
        let records = batch
            .items
            .into_iter()
            .map(|item| item.map(Record::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if batch.ended {
            Pull::Exhausted(records)
        } else {
            Pull::Records(records)
        })
    }

    /// A live stream cannot be replayed: nothing to resume from.
    fn snapshot(&self) -> Value {
        Value::Null
    }
}

/// A WebSocket as a one-partition source.
struct WebSocketSource {
    url: String,
}

#[async_trait]
impl FixedPartitionedSource for WebSocketSource {
    type Partition = WebSocketPartition;

    async fn list_parts(&self) -> Result<Vec<String>, BoxError> {
        Ok(vec!["singleton".to_owned()])
    }

    async fn build_part(
        &self,
        _part: &str,
        _resume: Option<Value>,
    ) -> Result<WebSocketPartition, BoxError> {
        Ok(WebSocketPartition {
            messages: messages(self.url.clone()).await?,
        })
    }
}

/// A WebSocket server on loopback sending `count` JSON messages, `gap`
/// apart, to its first client, then closing.
async fn serve(count: u64, gap: Duration) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        for n in 0..count {
            let text = serde_json::json!({ "n": n }).to_string();
            if socket.send(Message::text(text)).await.is_err() {
                return;
            }
            tokio::time::sleep(gap).await;
        }
        let _ = socket.close(None).await;
    });
    Ok(url)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let url = serve(10, Duration::from_millis(30)).await?;
    let link = Link::builder("websocket")
        .inlet(PartitionedInlet::new(WebSocketSource { url }))
        .outlet(PrintOutlet::new().only_payload(true))
        .every(Duration::from_millis(250))
        .build()?;
    // Stops by itself when every link has finished: here, when the server
    // closed the stream.
    let planner = Planner::builder()
        .link(link)
        .stop_when_finished(true)
        .build()?;
    tokio::time::timeout(Duration::from_secs(10), planner.start()).await??;
    Ok(())
}
