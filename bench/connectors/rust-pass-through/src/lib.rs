//! Returns the event it is given: what crossing into a Rust connector and
//! back costs (the SDK reading the event and writing it again), with no work
//! of the connector's own.

use sandpipe_connector::{Error, Event, Meta};

#[sandpipe_connector::process_event]
fn process_event(event: Event, _meta: &Meta) -> Result<Option<Event>, Error> {
    Ok(Some(event))
}

sandpipe_connector::export!();
