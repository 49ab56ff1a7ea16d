//! The benchmark's input: realistic ~1 KB events, generated deterministically
//! (a fixed-seed xorshift generator): varied event names, IPs that the GeoIP
//! database knows (so the enricher has work), nested properties, person
//! properties, arrays.

use maxminddb::Reader;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NAMES: [&str; 10] = [
    "$pageview",
    "$autocapture",
    "signup",
    "checkout_started",
    "order_completed",
    "$identify",
    "search",
    "video_played",
    "$pageleave",
    "feature_flag_called",
];
const BROWSERS: [&str; 5] = ["Chrome", "Firefox", "Safari", "Edge", "Opera"];
const OSES: [&str; 5] = ["Windows", "Mac OS X", "Linux", "iOS", "Android"];
const PATHS: [&str; 6] = [
    "/",
    "/pricing",
    "/docs/getting-started",
    "/blog/launch-week",
    "/cart",
    "/account/settings",
];

/// `count` addresses the database has a city for, drawn from the generator.
fn known_ips(rng: &mut Rng, reader: &Reader<Vec<u8>>, count: usize) -> Vec<String> {
    let mut found = Vec::with_capacity(count);
    while found.len() < count {
        let ip = Ipv4Addr::from(rng.next() as u32);
        if ip.is_private() || ip.is_loopback() || ip.is_multicast() || ip.is_unspecified() {
            continue;
        }
        let city = reader
            .lookup(IpAddr::V4(ip))
            .and_then(|r| r.decode::<Value>())
            .ok()
            .flatten();
        if city.is_some_and(|c| c.get("city").is_some()) {
            found.push(ip.to_string());
        }
    }
    found
}

/// The seed of the timed events.
pub const TIMED: u64 = 0x5a4d_91e3;
/// The seed of the warm-up events (other events, other addresses).
pub const WARMUP: u64 = 0x2c1b_7f05;

/// `count` events as NDJSON lines, from `seed`.
pub fn generate(count: usize, seed: u64, reader: &Reader<Vec<u8>>) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let ips = known_ips(&mut rng, reader, 2_000);
    (0..count)
        .map(|i| {
            let name = *rng.pick(&NAMES);
            let user = rng.below(5_000);
            let path = *rng.pick(&PATHS);
            let items: Vec<Value> = (0..1 + rng.below(3))
                .map(|k| {
                    // Whole prices as integers: JavaScript prints 5, not 5.0.
                    let cents = rng.below(10_000);
                    let price = if cents.is_multiple_of(100) { json!(cents / 100) } else { json!(cents as f64 / 100.0) };
                    json!({"sku": format!("SKU-{}-{k}", rng.below(900)), "quantity": 1 + rng.below(4), "price": price})
                })
                .collect();
            let mut event = json!({
                "event": name,
                "distinct_id": format!("user-{user}"),
                "uuid": format!("0190d6c2-{:04x}-7000-8000-{:012x}", i % 65_536, i),
                "timestamp": format!("2026-11-{:02}T{:02}:{:02}:{:02}.000Z", 1 + i % 28, i % 24, i % 60, (i * 7) % 60),
                "ip": rng.pick(&ips),
                "properties": {
                    "$current_url": format!("https://shop.example.com{path}?utm_source=newsletter&ref={}", rng.below(100)),
                    "$pathname": path,
                    "$browser": rng.pick(&BROWSERS),
                    "$browser_version": 100 + rng.below(30),
                    "$os": rng.pick(&OSES),
                    "$screen_width": 1280 + 64 * rng.below(10),
                    "$screen_height": 720 + 36 * rng.below(10),
                    "$lib": "web",
                    "$lib_version": "1.160.0",
                    "$session_id": format!("0190d6c2-aaaa-7bbb-8ccc-{:012x}", rng.next() % 1_000_000_000_000),
                    "$ip": rng.pick(&ips),
                    "plan": rng.pick(&["free", "pro", "team", "enterprise"]),
                    "cart": {"items": items, "currency": rng.pick(&["EUR", "USD", "GBP"]), "coupon": null},
                    "experiment": {"name": "checkout-v2", "variant": rng.pick(&["control", "test"]), "exposed": rng.below(2) == 1},
                    "tags": ["web", rng.pick(&["mobile", "desktop"]), rng.pick(&["new", "returning"])],
                    "$set": {"email": format!("user{user}@example.com"), "name": format!("User {user}")},
                    "$set_once": {"first_seen": "2026-11-01T10:00:00Z", "initial_referrer": "https://www.google.com/"},
                }
            });
            // Some events carry no IP, as server-side events often do.
            if i % 20 == 7 {
                let event = event.as_object_mut().expect("an object");
                event.shift_remove("ip");
                if let Some(Value::Object(properties)) = event.get_mut("properties") {
                    properties.shift_remove("$ip");
                }
            }
            event.to_string()
        })
        .collect()
}
