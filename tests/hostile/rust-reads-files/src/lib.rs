//! Reads a file of the host: its module imports WASI's `path_open`, which a
//! standalone bundle may not, so it is refused at admission.

use sandpipe_connector::{Error, Event, Meta};

#[sandpipe_connector::process_event]
fn process_event(mut event: Event, _meta: &Meta) -> Result<Option<Event>, Error> {
    let stolen = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    event.set("stolen", stolen);
    Ok(Some(event))
}

sandpipe_connector::export!();
