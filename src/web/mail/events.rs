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
    let changes = state.store.changes().subscribe();
    // The stream owns the subscription and no task is spawned: when the page goes away, axum
    // drops the stream and the subscription with it, at once (a task waiting on the bus would
    // live until the next change of any account).
    let events = futures::stream::unfold(changes, move |mut changes| async move {
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
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(event), changes));
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(25)))
}
