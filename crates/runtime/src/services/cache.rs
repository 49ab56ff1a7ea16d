//! `meta.cache`: a small Redis-like store per connector. Keys hold a JSON
//! value or a list of strings, optionally with a TTL. Bounded: at most
//! [`MAX_KEYS`] keys and [`MAX_BYTES`] of values in all. [`Cache`] keeps it in
//! host memory; a [`SharedCache`] (the service's Redis) implements the same
//! operations, given each request parsed as a [`CacheRequest`].

use super::{RequestError, string};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Keys one connector's cache may hold.
pub const MAX_KEYS: usize = 10_000;
/// Bytes of keys and values one connector's cache may hold.
pub const MAX_BYTES: usize = 16 << 20;

/// Why the cache refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CacheError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("unknown cache operation \"{0}\"")]
    UnknownOperation(String),
    #[error("ttl must be a non-negative number of seconds")]
    InvalidTtl,
    #[error("expire needs a ttl")]
    ExpireWithoutTtl,
    #[error("lpush needs elements")]
    NoElements,
    #[error("list elements must be strings")]
    ElementNotString,
    #[error("key \"{0}\" does not hold a list")]
    NotAList(String),
    #[error("value of \"{0}\" is not an integer")]
    NotAnInteger(String),
    #[error("increment would overflow")]
    Overflow,
    #[error("cache is full ({MAX_KEYS} keys)")]
    TooManyKeys,
    #[error("cache is full ({} MiB)", MAX_BYTES >> 20)]
    TooManyBytes,
    /// A shared cache's server cannot be reached.
    #[error("meta.cache is unavailable: {0}")]
    Unavailable(String),
}

/// One cache request, checked: what a [`SharedCache`] is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheRequest {
    Set {
        key: String,
        value: Value,
        ttl: Option<Duration>,
    },
    Get {
        key: String,
    },
    Incr {
        key: String,
    },
    Expire {
        key: String,
        ttl: Duration,
    },
    /// Each element pushed to the head in turn, as Redis's LPUSH.
    Lpush {
        key: String,
        elements: Vec<String>,
    },
    Lrange {
        key: String,
        start: i64,
        stop: i64,
    },
    Llen {
        key: String,
    },
    Lrem {
        key: String,
        count: i64,
        element: String,
    },
    Lpop {
        key: String,
        count: usize,
    },
}

impl CacheRequest {
    /// The request `request` makes, or why it is refused (the same refusals as [`Cache::handle`]).
    pub fn parse(request: &Value) -> Result<CacheRequest, CacheError> {
        let op = string(request, "op")?;
        let key = string(request, "key")?.to_string();
        Ok(match op {
            "set" => CacheRequest::Set {
                key,
                value: request.get("value").cloned().unwrap_or(Value::Null),
                ttl: ttl(request)?,
            },
            "get" => CacheRequest::Get { key },
            "incr" => CacheRequest::Incr { key },
            "expire" => CacheRequest::Expire {
                key,
                ttl: ttl(request)?.ok_or(CacheError::ExpireWithoutTtl)?,
            },
            "lpush" => CacheRequest::Lpush {
                key,
                elements: elements(request)?,
            },
            "lrange" => CacheRequest::Lrange {
                key,
                start: index(request, "start")?,
                stop: index(request, "stop")?,
            },
            "llen" => CacheRequest::Llen { key },
            "lrem" => CacheRequest::Lrem {
                key,
                count: index(request, "count")?,
                element: string(request, "element")?.to_string(),
            },
            "lpop" => CacheRequest::Lpop {
                key,
                count: index(request, "count")?.max(0) as usize,
            },
            other => return Err(CacheError::UnknownOperation(other.to_string())),
        })
    }
}

/// A `meta.cache` outside the host's memory, shared by processes: answers
/// each request as [`Cache::handle`] would, with the same bounds per connector.
pub trait SharedCache: Send + Sync {
    fn answer(&self, request: CacheRequest) -> Result<Value, CacheError>;
    /// Deletes every key (the connector was reset).
    fn clear(&self) -> Result<(), CacheError>;
}

/// The `"elements"` of an lpush: strings.
fn elements(request: &Value) -> Result<Vec<String>, CacheError> {
    request
        .get("elements")
        .and_then(Value::as_array)
        .ok_or(CacheError::NoElements)?
        .iter()
        .map(|e| {
            e.as_str()
                .map(str::to_string)
                .ok_or(CacheError::ElementNotString)
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Item {
    Value(Value),
    List(VecDeque<String>),
}

#[derive(Debug, Clone)]
struct Entry {
    item: Item,
    expires: Option<Instant>,
    bytes: usize,
}

/// One connector's cache.
#[derive(Debug, Default)]
pub struct Cache {
    entries: HashMap<String, Entry>,
    bytes: usize,
}

fn size_of(key: &str, item: &Item) -> usize {
    key.len()
        + match item {
            Item::Value(value) => serde_json::to_string(value).map_or(0, |s| s.len()),
            Item::List(list) => list.iter().map(|e| e.len() + 8).sum(),
        }
}

fn ttl(request: &Value) -> Result<Option<Duration>, CacheError> {
    match request.get("ttl") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_f64() {
            Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
                Ok(Some(Duration::from_secs_f64(seconds.min(1e9))))
            }
            _ => Err(CacheError::InvalidTtl),
        },
    }
}

impl Cache {
    fn live(&mut self, key: &str) -> Option<&mut Entry> {
        let expired = self
            .entries
            .get(key)
            .is_some_and(|e| e.expires.is_some_and(|t| t <= Instant::now()));
        if expired {
            self.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes -= entry.bytes;
        }
    }

    fn purge_expired(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.remove(&key);
        }
    }

    fn put(&mut self, key: &str, item: Item, expires: Option<Instant>) -> Result<(), CacheError> {
        let bytes = size_of(key, &item);
        let old = self.entries.get(key).map_or(0, |e| e.bytes);
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_KEYS {
            self.purge_expired();
            if self.entries.len() >= MAX_KEYS {
                return Err(CacheError::TooManyKeys);
            }
        }
        if self.bytes - old + bytes > MAX_BYTES {
            self.purge_expired();
            let old = self.entries.get(key).map_or(0, |e| e.bytes);
            if self.bytes - old + bytes > MAX_BYTES {
                return Err(CacheError::TooManyBytes);
            }
        }
        self.remove(key);
        self.bytes += bytes;
        self.entries.insert(
            key.to_string(),
            Entry {
                item,
                expires,
                bytes,
            },
        );
        Ok(())
    }

    fn list(&mut self, key: &str) -> Result<Option<&mut VecDeque<String>>, CacheError> {
        match self.live(key) {
            None => Ok(None),
            Some(Entry {
                item: Item::List(list),
                ..
            }) => Ok(Some(list)),
            Some(_) => Err(CacheError::NotAList(key.to_string())),
        }
    }

    /// Answers one cache request.
    pub fn handle(&mut self, request: &Value) -> Result<Value, CacheError> {
        let op = string(request, "op")?;
        let key = string(request, "key")?;
        match op {
            "set" => {
                let value = request.get("value").cloned().unwrap_or(Value::Null);
                let expires = ttl(request)?.map(|d| Instant::now() + d);
                self.put(key, Item::Value(value), expires)?;
                Ok(Value::Null)
            }
            "get" => Ok(match self.live(key) {
                Some(Entry {
                    item: Item::Value(value),
                    ..
                }) => json!({ "value": value }),
                Some(Entry {
                    item: Item::List(list),
                    ..
                }) => json!({ "value": list }),
                None => Value::Null,
            }),
            "incr" => {
                let (current, expires) = match self.live(key) {
                    None => (0, None),
                    Some(Entry {
                        item: Item::Value(value),
                        expires,
                        ..
                    }) => {
                        let n = match value {
                            Value::Number(n) => n.as_i64(),
                            Value::String(s) => s.parse::<i64>().ok(),
                            _ => None,
                        };
                        (
                            n.ok_or_else(|| CacheError::NotAnInteger(key.to_string()))?,
                            *expires,
                        )
                    }
                    Some(_) => return Err(CacheError::NotAnInteger(key.to_string())),
                };
                let next = current.checked_add(1).ok_or(CacheError::Overflow)?;
                self.put(key, Item::Value(json!(next)), expires)?;
                Ok(json!(next))
            }
            "expire" => {
                let after = ttl(request)?.ok_or(CacheError::ExpireWithoutTtl)?;
                Ok(match self.live(key) {
                    Some(entry) => {
                        entry.expires = Some(Instant::now() + after);
                        json!(true)
                    }
                    None => json!(false),
                })
            }
            "lpush" => {
                let elements = elements(request)?;
                let (mut list, expires) = match self.live(key) {
                    None => (VecDeque::new(), None),
                    Some(Entry {
                        item: Item::List(list),
                        expires,
                        ..
                    }) => (list.clone(), *expires),
                    Some(_) => return Err(CacheError::NotAList(key.to_string())),
                };
                for element in elements {
                    list.push_front(element);
                }
                let len = list.len();
                self.put(key, Item::List(list), expires)?;
                Ok(json!(len))
            }
            "lrange" => {
                let list = self
                    .list(key)?
                    .map(|l| l.iter().cloned().collect::<Vec<_>>())
                    .unwrap_or_default();
                let (start, stop) = (index(request, "start")?, index(request, "stop")?);
                Ok(json!(redis_range(&list, start, stop)))
            }
            "llen" => Ok(json!(self.list(key)?.map_or(0, |l| l.len()))),
            "lrem" => {
                let count = index(request, "count")?;
                let element = string(request, "element")?.to_string();
                let Some(list) = self.list(key)? else {
                    return Ok(json!(0));
                };
                let mut removed = 0i64;
                let limit = if count == 0 { i64::MAX } else { count.abs() };
                let mut kept: VecDeque<String> = VecDeque::with_capacity(list.len());
                let items: Vec<String> = if count < 0 {
                    list.iter().rev().cloned().collect()
                } else {
                    list.iter().cloned().collect()
                };
                for item in items {
                    if item == element && removed < limit {
                        removed += 1;
                    } else if count < 0 {
                        kept.push_front(item);
                    } else {
                        kept.push_back(item);
                    }
                }
                let expires = self.live(key).and_then(|e| e.expires);
                self.put(key, Item::List(kept), expires)?;
                Ok(json!(removed))
            }
            "lpop" => {
                let count = index(request, "count")?.max(0) as usize;
                let Some(list) = self.list(key)? else {
                    return Ok(Value::Null);
                };
                let popped: Vec<String> = (0..count).map_while(|_| list.pop_front()).collect();
                let remaining = Item::List(list.clone());
                let expires = self.live(key).and_then(|e| e.expires);
                self.put(key, remaining, expires)?;
                Ok(json!(popped))
            }
            other => Err(CacheError::UnknownOperation(other.to_string())),
        }
    }
}

fn index(request: &Value, name: &'static str) -> Result<i64, RequestError> {
    request
        .get(name)
        .and_then(Value::as_f64)
        .filter(|n| n.is_finite())
        .map(|n| n as i64)
        .ok_or(RequestError::Number(name))
}

/// Redis LRANGE semantics: inclusive, negative indices from the end.
fn redis_range(list: &[String], start: i64, stop: i64) -> Vec<String> {
    let len = list.len() as i64;
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, stop) = (norm(start), norm(stop).min(len - 1));
    if len == 0 || start > stop {
        return Vec::new();
    }
    list[start as usize..=stop as usize].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer, or the message the connector would see.
    fn call(cache: &mut Cache, request: Value) -> Result<Value, String> {
        cache.handle(&request).map_err(|e| e.to_string())
    }

    #[test]
    fn values_incr_and_ttl() {
        let mut c = Cache::default();
        assert_eq!(
            call(&mut c, json!({"op": "get", "key": "a"})),
            Ok(Value::Null)
        );
        call(&mut c, json!({"op": "set", "key": "a", "value": {"x": 1}})).unwrap();
        assert_eq!(
            call(&mut c, json!({"op": "get", "key": "a"})),
            Ok(json!({"value": {"x": 1}}))
        );
        assert_eq!(
            call(&mut c, json!({"op": "incr", "key": "n"})),
            Ok(json!(1))
        );
        assert_eq!(
            call(&mut c, json!({"op": "incr", "key": "n"})),
            Ok(json!(2))
        );
        assert_eq!(
            call(&mut c, json!({"op": "incr", "key": "a"})),
            Err("value of \"a\" is not an integer".into())
        );
        call(
            &mut c,
            json!({"op": "set", "key": "t", "value": 1, "ttl": 0}),
        )
        .unwrap();
        assert_eq!(
            call(&mut c, json!({"op": "get", "key": "t"})),
            Ok(Value::Null)
        );
        assert_eq!(
            call(&mut c, json!({"op": "expire", "key": "n", "ttl": 0})),
            Ok(json!(true))
        );
        assert_eq!(
            call(&mut c, json!({"op": "get", "key": "n"})),
            Ok(Value::Null)
        );
        assert_eq!(
            call(&mut c, json!({"op": "expire", "key": "missing", "ttl": 5})),
            Ok(json!(false))
        );
    }

    #[test]
    fn lists_follow_redis() {
        let mut c = Cache::default();
        assert_eq!(
            call(
                &mut c,
                json!({"op": "lpush", "key": "l", "elements": ["a", "b"]})
            ),
            Ok(json!(2))
        );
        assert_eq!(
            call(
                &mut c,
                json!({"op": "lpush", "key": "l", "elements": ["c", "a"]})
            ),
            Ok(json!(4))
        );
        assert_eq!(
            call(
                &mut c,
                json!({"op": "lrange", "key": "l", "start": 0, "stop": -1})
            ),
            Ok(json!(["a", "c", "b", "a"]))
        );
        assert_eq!(
            call(
                &mut c,
                json!({"op": "lrange", "key": "l", "start": 1, "stop": 2})
            ),
            Ok(json!(["c", "b"]))
        );
        assert_eq!(
            call(&mut c, json!({"op": "llen", "key": "l"})),
            Ok(json!(4))
        );
        assert_eq!(
            call(
                &mut c,
                json!({"op": "lrem", "key": "l", "count": 1, "element": "a"})
            ),
            Ok(json!(1))
        );
        assert_eq!(
            call(
                &mut c,
                json!({"op": "lrange", "key": "l", "start": 0, "stop": -1})
            ),
            Ok(json!(["c", "b", "a"]))
        );
        assert_eq!(
            call(&mut c, json!({"op": "lpop", "key": "l", "count": 2})),
            Ok(json!(["c", "b"]))
        );
        assert_eq!(
            call(&mut c, json!({"op": "llen", "key": "l"})),
            Ok(json!(1))
        );
        assert_eq!(
            call(&mut c, json!({"op": "llen", "key": "none"})),
            Ok(json!(0))
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut c = Cache::default();
        for i in 0..MAX_KEYS {
            call(
                &mut c,
                json!({"op": "set", "key": format!("k{i}"), "value": 1}),
            )
            .unwrap();
        }
        assert_eq!(
            call(&mut c, json!({"op": "set", "key": "one-more", "value": 1})),
            Err(format!("cache is full ({MAX_KEYS} keys)"))
        );
        let big = "x".repeat(MAX_BYTES);
        let mut c = Cache::default();
        assert_eq!(
            call(&mut c, json!({"op": "set", "key": "big", "value": big})),
            Err("cache is full (16 MiB)".into())
        );
    }
}
