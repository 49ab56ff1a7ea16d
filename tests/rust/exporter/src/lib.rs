//! `tests/compat/cases/on-event-retry/exporter` in Rust, hook for hook: an
//! export whose destination asks for a retry twice per event (always, for
//! `always`), that fails without asking for `broken`, saying each time what
//! it was handed; and a `compose_webhook`
//! and a `setup` so every hook attribute is exercised.

use sandpipe_connector::{Error, Event, Meta, Webhook};
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    /// Attempts per distinct id: the instance's memory, as `meta.global` is.
    static ATTEMPTS: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
}

#[sandpipe_connector::setup]
fn setup(meta: &Meta) -> Result<(), Error> {
    meta.console.debug("set up");
    Ok(())
}

#[sandpipe_connector::process_event]
fn process_event(event: Event, _meta: &Meta) -> Result<Option<Event>, Error> {
    Ok((event.name() != Some("skip")).then_some(event))
}

#[sandpipe_connector::compose_webhook]
fn compose_webhook(event: Event, _meta: &Meta) -> Result<Option<Webhook>, Error> {
    let body = sandpipe_connector::serde_json::to_string(&event.0)?;
    Ok(Some(Webhook::post("https://example.com/hook", body)))
}

#[sandpipe_connector::on_event]
fn on_event(event: Event, meta: &Meta) -> Result<(), Error> {
    let id = event
        .get("distinct_id")
        .and_then(|id| id.as_str())
        .unwrap_or_default()
        .to_string();
    let attempt = ATTEMPTS.with_borrow_mut(|attempts| {
        let attempt = attempts.entry(id.clone()).or_default();
        *attempt += 1;
        *attempt
    });
    let handed = sandpipe_connector::serde_json::to_string(&event.0)?;
    meta.console.log(&format!("attempt {attempt} {handed}"));
    if event.name() == Some("broken") {
        return Err(Error::new(format!("cannot export this one ({attempt})")));
    }
    if event.name() == Some("always") || attempt < 3 {
        return Err(Error::retry(format!("destination busy ({attempt})")));
    }
    meta.console.log(&format!("exported {id}"));
    Ok(())
}

sandpipe_connector::export!();
