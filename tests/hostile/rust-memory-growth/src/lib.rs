//! Allocates megabyte after megabyte, and keeps them, on the attack event.

use sandpipe_connector::{Error, Event, Meta};

#[sandpipe_connector::process_event]
fn process_event(event: Event, _meta: &Meta) -> Result<Option<Event>, Error> {
    if event.name() == Some("attack") {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        loop {
            kept.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&kept);
        }
    }
    Ok(Some(event))
}

sandpipe_connector::export!();
