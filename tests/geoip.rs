//! `meta.geoip` and the geoip-enricher example against the real GeoLite2-City
//! database (`cargo xtask geoip` fetches it; `cargo xtask test` does so first).
//! Expected values in the example's fixtures are checked here against the
//! database read by an independent path: maxminddb's typed `geoip2::City`.

mod common;

use common::*;
use maxminddb::{Reader, geoip2};
use sandpipe_runtime::{Chain, GeoIpDatabase, MemoryLogs};
use serde_json::{Value, json};
use std::sync::Arc;

fn database_path() -> std::path::PathBuf {
    root().join("data/GeoLite2-City.mmdb")
}

fn reader() -> Reader<Vec<u8>> {
    Reader::open_readfile(database_path())
        .expect("data/GeoLite2-City.mmdb (run `cargo xtask geoip`)")
}

/// The `$geoip_*` values the database holds for `ip`, read with maxminddb's typed records.
fn expected_from_database(reader: &Reader<Vec<u8>>, ip: &str) -> serde_json::Map<String, Value> {
    let city: geoip2::City = reader
        .lookup(ip.parse().unwrap())
        .unwrap()
        .decode()
        .unwrap()
        .expect("ip is in the database");
    let mut out = serde_json::Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            out.insert(format!("$geoip_{key}"), value);
        }
    };
    put("city_name", city.city.names.english.map(Value::from));
    put("country_name", city.country.names.english.map(Value::from));
    put("country_code", city.country.iso_code.map(Value::from));
    put(
        "continent_name",
        city.continent.names.english.map(Value::from),
    );
    put("continent_code", city.continent.code.map(Value::from));
    put("postal_code", city.postal.code.map(Value::from));
    put("latitude", city.location.latitude.map(Value::from));
    put("longitude", city.location.longitude.map(Value::from));
    put(
        "accuracy_radius",
        city.location.accuracy_radius.map(Value::from),
    );
    put("time_zone", city.location.time_zone.map(Value::from));
    for (i, subdivision) in city.subdivisions.iter().enumerate() {
        put(
            &format!("subdivision_{}_code", i + 1),
            subdivision.iso_code.map(Value::from),
        );
        put(
            &format!("subdivision_{}_name", i + 1),
            subdivision.names.english.map(Value::from),
        );
    }
    out
}

#[test]
fn fixture_expectations_match_the_database() {
    let reader = reader();
    let text = std::fs::read_to_string(root().join("examples/geoip-enricher/tests/enriches.json"))
        .unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let inputs = fixture["input"].as_array().unwrap();
    let expected = fixture["expected"].as_array().unwrap();
    assert_eq!(inputs.len(), 3);
    for (input, expected) in inputs.iter().zip(expected) {
        let ip = input["ip"]
            .as_str()
            .or_else(|| input["properties"]["$ip"].as_str())
            .unwrap();
        let from_db = expected_from_database(&reader, ip);
        assert!(from_db.contains_key("$geoip_country_code"), "{ip}");
        let properties = expected["properties"].as_object().unwrap();
        let geo: serde_json::Map<String, Value> = properties
            .iter()
            .filter(|(k, _)| k.starts_with("$geoip_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(geo, from_db, "fixture for {ip} disagrees with the database");
        for (key, value) in &from_db {
            assert_eq!(&properties["$set"][key], value, "$set.{key} for {ip}");
            let initial = key.replacen("$geoip_", "$initial_geoip_", 1);
            assert_eq!(
                &properties["$set_once"][&initial], value,
                "$set_once.{initial} for {ip}"
            );
        }
    }
}

#[test]
fn locate_returns_the_node_reader_shape() {
    let logs = Arc::new(MemoryLogs::default());
    let connector = connector_with_options(
        bundle(
            "locate",
            "async function processEvent(e, { geoip }) { e.geo = await geoip.locate(e.ip); return e }",
        ),
        0,
        Default::default(),
        ConnectorOptions {
            logs: logs.clone(),
            geoip: Some(Arc::new(GeoIpDatabase::new(database_path()))),
            ..ConnectorOptions::default()
        },
    );
    let mut chain = Chain::new(vec![connector]);
    let geo = chain.process(json!({"ip": "89.160.20.128"})).event.unwrap()["geo"].clone();
    let reader = reader();
    let city: geoip2::City = reader
        .lookup("89.160.20.128".parse().unwrap())
        .unwrap()
        .decode()
        .unwrap()
        .unwrap();
    assert_eq!(
        geo["country"]["isoCode"],
        json!(city.country.iso_code.unwrap())
    );
    assert_eq!(
        geo["location"]["timeZone"],
        json!(city.location.time_zone.unwrap())
    );
    assert_eq!(
        geo["location"]["accuracyRadius"],
        json!(city.location.accuracy_radius.unwrap())
    );
    assert_eq!(
        geo["city"]["names"]["en"],
        json!(city.city.names.english.unwrap())
    );
    assert_eq!(
        geo["subdivisions"][0]["isoCode"],
        json!(city.subdivisions[0].iso_code.unwrap())
    );
    assert_eq!(
        geo["country"]["geonameId"],
        json!(city.country.geoname_id.unwrap())
    );
    assert!(
        geo["country"].get("iso_code").is_none(),
        "keys are camelCased"
    );
    // An address not in the database is null; a malformed one rejects.
    assert_eq!(
        chain.process(json!({"ip": "127.0.0.1"})).event.unwrap()["geo"],
        Value::Null
    );
    let out = chain.process(json!({"ip": "not an ip"}));
    assert_eq!(out.failures.len(), 1);
}

/// Lookups are answered from the record cache after the first: each answer
/// must still be its own address's record, as a database that never saw the
/// others gives it.
#[test]
fn records_read_again_are_the_records_of_their_addresses() {
    let shared = GeoIpDatabase::new(database_path());
    let ips = [
        "89.160.20.128",
        "89.160.20.129",
        "81.2.69.142",
        "89.160.20.128",
        "81.2.69.142",
    ];
    let mut answers = Vec::new();
    for ip in ips {
        let alone = GeoIpDatabase::new(database_path()).locate(ip).unwrap();
        let answer = shared.locate(ip).unwrap();
        assert_eq!(answer, alone, "{ip}");
        answers.push(answer.expect("in the database"));
    }
    assert_ne!(answers[0], answers[2], "two cities, two records");
    let record: Value = serde_json::from_slice(&answers[2]).unwrap();
    assert_eq!(record["country"]["isoCode"], json!("GB"));
}
