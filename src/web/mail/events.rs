//! Live updates: a server-sent event stream per open webmail page, fed by the store's change
//! bus, so new mail and changes made over IMAP (or in another tab) show without a reload.
//! Events carry no content, only "something changed in folder N"; the page fetches what it
//! shows. A client that falls behind the bus gets one `changed` for everything.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::super::WebState;
use super::Reader;

pub async fn stream(
    reader: Reader,
    State(state): State<WebState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let account = reader.account_id();
    let mut changes = state.store.changes().subscribe();
    let events = async_stream(move |tx| async move {
        loop {
            let event = match changes.recv().await {
                Ok(change) if change.account_id() == account => match change.mailbox() {
                    Some(mailbox_id) => Event::default()
                        .event("changed")
                        .data(mailbox_id.to_string()),
                    None => Event::default().event("changed").data("folders"),
                },
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => Event::default().event("changed").data("all"),
                Err(RecvError::Closed) => return,
            };
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(25)))
}

/// A stream fed by a task: the task ends when the page goes away (the receiver is dropped).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
}
