//! Recurses without end on the attack event.

use sandpipe_connector::{Error, Event, Meta};

fn deeper(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    std::hint::black_box(deeper(std::hint::black_box(n - 1))) + 1
}

#[sandpipe_connector::process_event]
fn process_event(mut event: Event, _meta: &Meta) -> Result<Option<Event>, Error> {
    if event.name() == Some("attack") {
        event.set("depth", deeper(u64::MAX));
    }
    Ok(Some(event))
}

sandpipe_connector::export!();
