//! A configured connector's stable identity: the `id` of its chain entry
//! (CHAIN.json for `run`, the chain a team PUTs in `serve`). `meta.storage` and
//! `meta.cache` are scoped to it, so a connector keeps its state across a new
//! bundle version, a reordered chain or a moved chain file.
//!
//! The rule: an entry's `id` is the one it gives; without one, the plugin's
//! name; when several entries without an `id` run the same plugin, the first
//! (in chain order) gets the name and the later ones `NAME#2`, `NAME#3`, ….
//! Ids are unique in a chain; a duplicate is an error naming both positions.

use thiserror::Error;

/// Longest id (characters).
pub const MAX_ID_CHARS: usize = 200;

/// Why a chain's ids are not usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error(
        "connector {position}: id must be 1 to {MAX_ID_CHARS} characters without control characters, got {id:?}"
    )]
    Invalid { position: usize, id: String },
    #[error(
        "connector {second}: id {id:?} is already connector {first}'s; give one of them another \"id\""
    )]
    Duplicate {
        id: String,
        first: usize,
        second: usize,
    },
}

/// The `meta.storage` / `meta.cache` scope of connector `id`: of a team in
/// `serve`, of the storage file in `run` (which belongs to one chain directory
/// unless `--storage` says otherwise). Never the bundle, a position or a path.
pub fn scope(team: Option<i64>, id: &str) -> String {
    match team {
        Some(team) => format!("team:{team}/{id}"),
        None => format!("run/{id}"),
    }
}

/// Whether `id` is an acceptable explicit id.
fn valid(id: &str) -> bool {
    let chars = id.chars().count();
    (1..=MAX_ID_CHARS).contains(&chars) && !id.chars().any(char::is_control)
}

/// The id of the `count`th entry without one that runs the plugin `name`:
/// the name (`NAME#2` from the second on), made an id the service would
/// accept back — control characters as spaces, cut to fit [`MAX_ID_CHARS`]
/// with its number — so a chain read back can be saved as it is. A name that
/// is already such an id is its own id.
fn from_name(name: &str, count: usize) -> String {
    let suffix = if count == 1 {
        String::new()
    } else {
        format!("#{count}")
    };
    let room = MAX_ID_CHARS - suffix.chars().count();
    let base: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(room)
        .collect();
    let base = if base.trim().is_empty() {
        "connector".to_string()
    } else {
        base
    };
    format!("{base}{suffix}")
}

/// Each entry's id, in order, from its explicit id (if any) and its plugin's name.
pub fn assign<'a>(
    entries: impl IntoIterator<Item = (Option<&'a str>, &'a str)>,
) -> Result<Vec<String>, IdError> {
    let mut seen_names: std::collections::HashMap<&str, usize> = Default::default();
    let mut ids: Vec<String> = Vec::new();
    for (position, (explicit, name)) in entries.into_iter().enumerate() {
        let id = match explicit {
            Some(id) if valid(id) => id.to_string(),
            Some(id) => {
                return Err(IdError::Invalid {
                    position,
                    id: id.to_string(),
                });
            }
            None => {
                let count = seen_names.entry(name).or_default();
                *count += 1;
                from_name(name, *count)
            }
        };
        if let Some(first) = ids.iter().position(|other| *other == id) {
            return Err(IdError::Duplicate {
                id,
                first,
                second: position,
            });
        }
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_default_to_the_plugin_name_numbered_by_order() {
        assert_eq!(
            assign([
                (None, "A"),
                (None, "B"),
                (None, "A"),
                (Some("mine"), "A"),
                (None, "A")
            ]),
            Ok(vec![
                "A".to_string(),
                "B".into(),
                "A#2".into(),
                "mine".into(),
                "A#3".into()
            ])
        );
    }

    #[test]
    fn duplicate_and_invalid_ids_are_refused() {
        assert_eq!(
            assign([(None, "A"), (Some("A"), "B")]),
            Err(IdError::Duplicate {
                id: "A".into(),
                first: 0,
                second: 1
            })
        );
        assert_eq!(
            assign([(Some(""), "A")]).unwrap_err().to_string(),
            "connector 0: id must be 1 to 200 characters without control characters, got \"\""
        );
        assert!(assign([(Some("a\nb"), "A")]).is_err());
        assert!(assign([(Some(&*"x".repeat(201)), "A")]).is_err());
    }

    #[test]
    fn an_id_made_from_a_name_is_one_the_service_accepts_back() {
        let long = "L".repeat(250);
        let ids = assign([
            (None, long.as_str()),
            (None, long.as_str()),
            (None, "a\nb"),
            (None, "\n"),
        ])
        .unwrap();
        assert_eq!(
            ids,
            [
                "L".repeat(200),
                format!("{}#2", "L".repeat(198)),
                "a b".into(),
                "connector".into()
            ]
        );
        for id in &ids {
            assert!(valid(id), "{id:?}");
        }
        // Read back and given as explicit ids, they are kept.
        let again: Vec<(Option<&str>, &str)> =
            ids.iter().map(|id| (Some(id.as_str()), "x")).collect();
        assert_eq!(assign(again).unwrap(), ids);
    }
}
