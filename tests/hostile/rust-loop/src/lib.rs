//! Spins forever on the attack event.

use sandpipe_connector::{Error, Event, Meta};

#[sandpipe_connector::process_event]
fn process_event(event: Event, _meta: &Meta) -> Result<Option<Event>, Error> {
    if event.name() == Some("attack") {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    Ok(Some(event))
}

sandpipe_connector::export!();
