//! The delivery queue: composed webhook requests and `onEvent` calls, stored
//! pending before the events response returns, leased by the delivery worker,
//! finished as delivered or dead, and pruned once finished rows are past their
//! retention.

use super::logs::CONNECTOR_IS;
use super::{Result, SqliteStore, now_ms};
use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value};

/// Which of a team's webhook rows to read, and from which end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookFilter {
    /// `pending`, `delivered` or `dead`.
    pub status: Option<&'static str>,
    /// A connector's label `"<name> (<position>)"`, its name, or (for an
    /// `onEvent` or `exportEvents` row) its id.
    pub connector: Option<String>,
    pub page: WebhookPage,
}

/// A page of at most [`WEBHOOK_PAGE`] rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WebhookPage {
    /// Oldest first, the rows whose id is above this one (0: from the oldest).
    After(i64),
    /// Newest first, the rows whose id is below this one (`None`: from the newest).
    Before(Option<i64>),
}

impl Default for WebhookPage {
    fn default() -> Self {
        WebhookPage::After(0)
    }
}

impl WebhookPage {
    /// The id bound and the SQL that orders and bounds the page by it, for a
    /// statement whose parameter `param` is that bound.
    pub(crate) fn sql(self, param: &str) -> (i64, String) {
        match self {
            WebhookPage::After(id) => {
                (id, format!("id > {param} ORDER BY id LIMIT {WEBHOOK_PAGE}"))
            }
            WebhookPage::Before(id) => (
                id.unwrap_or(i64::MAX),
                format!("id < {param} ORDER BY id DESC LIMIT {WEBHOOK_PAGE}"),
            ),
        }
    }
}

/// Rows a page of `GET …/webhooks` holds at most.
pub const WEBHOOK_PAGE: usize = 1_000;

/// One stored webhook request, or `onEvent` call ([`ON_EVENT`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WebhookRow {
    pub id: i64,
    #[serde(skip)]
    pub team: i64,
    /// [`REQUEST`] or [`ON_EVENT`] (shown only for the latter).
    #[serde(skip_serializing_if = "is_request")]
    pub kind: String,
    /// The stable id of the connector an `onEvent` call is for.
    #[serde(skip)]
    pub connector_id: Option<String>,
    /// Whether an `onEvent` call's event was captured by a connector.
    #[serde(skip)]
    pub of_captured: bool,
    /// For an [`EXPORT`] row: the size past which its batch is cut. For an
    /// [`ON_EVENT`] row, -1 when it was queued before `exportEvents` had
    /// batches (schema version 10), when it also stood for
    /// `exportEvents([event])`.
    #[serde(skip)]
    pub batch_bytes: i64,
    /// For an [`EXPORT`] row whose batch failed: the id its batch's rows
    /// share, so they are retried as that batch (0 before).
    #[serde(skip)]
    pub batch_id: i64,
    pub connector: String,
    pub url: String,
    pub method: String,
    #[serde(skip)]
    pub headers: Map<String, Value>,
    #[serde(skip)]
    pub body: Option<String>,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
}

/// A row's `kind`: an HTTP request `composeWebhook` returned.
pub const REQUEST: &str = "request";
/// A row's `kind`: a call of the connector's `onEvent`, `body` the event
/// (`url` and `method` empty).
pub const ON_EVENT: &str = "on_event";
/// A row's `kind`: an event for the connector's `exportEvents`, `body` the
/// event, delivered in one call with the others of its batch.
pub const EXPORT: &str = "export";

/// The kinds leased a row at a time (an [`EXPORT`] row is leased with its
/// batch), named rather than "every kind but export": a row of a kind a newer
/// sandpipe added, seen by this one while both run on one database (a
/// rolling upgrade), is left pending for a process that knows it, not sent
/// as a request and marked dead.
pub(crate) const LEASED_ONE_BY_ONE: &str = "kind IN ('request', 'on_event')";

fn is_request(kind: &str) -> bool {
    kind == REQUEST
}

/// An `onEvent` call to queue, or an event for an `exportEvents` batch: the
/// connector (label and stable id) and the final event's JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct OnEventJob {
    pub connector: String,
    pub connector_id: String,
    pub event: String,
    /// Whether the event was captured by a connector (`posthog.capture`).
    pub of_captured: bool,
    /// For `exportEvents` ([`EXPORT`]): how the connector's buffer goes.
    pub buffer: Option<Buffering>,
}

/// How an `exportEvents` connector's queued events go: all that wait in its
/// buffer once the oldest has waited `wait_ms` (each row is due `wait_ms`
/// after it was queued, and the lease takes a buffer whole when any of it is
/// due), or at once those that fill batches of more than `bytes` (the rule
/// of `sandpipe_runtime::export`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Buffering {
    pub wait_ms: i64,
    pub bytes: i64,
}

impl Buffering {
    /// The id of the last queued row to send now: the last of the full
    /// batches that the rows waiting (`(id, size)` in id order) make, or of
    /// all of them when the last batch is over the limit too.
    pub fn full_through(&self, waiting: &[(i64, i64)]) -> Option<i64> {
        let limit = usize::try_from(self.bytes).unwrap_or(1);
        let sizes = waiting.iter().map(|&(_, size)| size.max(0) as usize);
        let cut = sandpipe_runtime::export::batches(sizes, limit);
        let last = cut.last()?;
        let open: usize = waiting[last.clone()]
            .iter()
            .map(|&(_, s)| s.max(0) as usize)
            .sum();
        let sent = if open > limit {
            cut.len()
        } else {
            cut.len() - 1
        };
        let end = cut.get(sent.checked_sub(1)?)?.end;
        Some(waiting[end - 1].0)
    }
}

pub(crate) const WEBHOOK_COLUMNS: &str = "id, connector, url, method, headers, body, status, attempts, last_error, created_at, team_id, kind, connector_id, of_captured, batch_bytes, batch_id";

/// Whether an [`EXPORT`] row `w` is due at `?1`, in SQL both back ends read
/// (`?1` spelled as each binds it): due itself, or in a buffer (`buffered`)
/// any of whose rows is due, so a buffer goes whole once its oldest is due.
pub(crate) const EXPORT_DUE: &str = "(w.next_attempt_ms <= ?1 OR (w.buffered = 1 AND EXISTS (\
    SELECT 1 FROM webhooks o WHERE o.team_id = w.team_id AND o.connector_id = w.connector_id \
    AND o.of_captured = w.of_captured AND o.buffered = 1 AND o.status = 'pending' AND o.next_attempt_ms <= ?1)))";

/// What size a queued export row's event counts for in a batch (its text's
/// bytes and a comma: `sandpipe_runtime::export::size_of`), in SQLite's SQL.
const EXPORT_SIZE: &str = "LENGTH(CAST(body AS BLOB)) + 1";

fn webhook_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookRow> {
    let headers: String = r.get(4)?;
    Ok(WebhookRow {
        id: r.get(0)?,
        connector: r.get(1)?,
        url: r.get(2)?,
        method: r.get(3)?,
        headers: serde_json::from_str(&headers).unwrap_or_default(),
        body: r.get(5)?,
        status: r.get(6)?,
        attempts: r.get(7)?,
        last_error: r.get(8)?,
        created_at: r.get(9)?,
        team: r.get(10)?,
        kind: r.get(11)?,
        connector_id: r.get(12)?,
        of_captured: r.get::<_, i64>(13)? != 0,
        batch_bytes: r.get(14)?,
        batch_id: r.get(15)?,
    })
}

/// What asking to deliver a webhook again did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery {
    /// It was dead and is pending again, due now, its attempts counted from 0.
    Queued,
    /// It is not dead (pending or delivered): nothing changed.
    NotDead,
    /// The team has no webhook with that id.
    Missing,
}

/// Webhook requests and their delivery state.
pub trait WebhookStore: Send + Sync {
    /// Makes the team's dead webhook `id` pending again.
    fn redeliver_webhook(&self, team: i64, id: i64) -> Result<Redelivery>;
    /// Stores composed requests as pending, in one transaction.
    fn enqueue_webhooks(
        &self,
        team: i64,
        requests: &[sandpipe_runtime::WebhookRequest],
    ) -> Result<()>;
    /// Stores `onEvent` calls as pending, in one transaction.
    fn enqueue_on_events(&self, team: i64, jobs: &[OnEventJob]) -> Result<()>;
    /// Pending [`EXPORT`] rows due at `now_ms` (at most `limit`): those due
    /// themselves and every row of a buffer any of whose rows is due; leased
    /// as [`WebhookStore::lease_due_webhooks`] leases, and no longer
    /// buffered; in order of team, connector, `of_captured`, batch and id.
    fn lease_due_exports(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<WebhookRow>>;
    /// Records one attempt at a batch of rows (`(id, attempts)`): delivered
    /// when `error` is `None`; else retried at `next_attempt_ms` (the rows
    /// marked as one batch, by the first row's id), or `dead` when there is
    /// none.
    fn batch_finished(
        &self,
        rows: &[(i64, i64)],
        error: Option<&str>,
        next_attempt_ms: Option<i64>,
    ) -> Result<()>;
    /// Pending requests and `onEvent` calls (not [`EXPORT`] rows) due at
    /// `now_ms`, leased until `lease_until_ms` so the next poll does not pick
    /// them again while they are in flight.
    fn lease_due_webhooks(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<WebhookRow>>;
    /// Gives back leased rows no attempt was made on: due again at once,
    /// with the attempt a lease may have counted (PostgreSQL's) taken back.
    fn release_leases(&self, ids: &[i64]) -> Result<()>;
    /// Records a delivered attempt at one row.
    fn webhook_delivered(&self, id: i64, attempts: i64) -> Result<()> {
        self.batch_finished(&[(id, attempts)], None, None)
    }
    /// Records a failed attempt at one row: retry at `next_attempt_ms`, or
    /// `dead` when there is none.
    fn webhook_failed(
        &self,
        id: i64,
        attempts: i64,
        error: &str,
        next_attempt_ms: Option<i64>,
    ) -> Result<()> {
        self.batch_finished(&[(id, attempts)], Some(error), next_attempt_ms)
    }
    /// A page of the team's rows that `filter` selects: the next page starts
    /// at the last id of this one.
    fn webhooks(&self, team: i64, filter: &WebhookFilter) -> Result<Vec<WebhookRow>>;
    /// Deletes delivered and dead rows that finished at or before `before_ms`;
    /// returns how many.
    fn prune_webhooks(&self, before_ms: i64) -> Result<usize>;
}

impl WebhookStore for SqliteStore {
    fn enqueue_on_events(&self, team: i64, jobs: &[OnEventJob]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        self.with(|c| {
            let tx = c.transaction()?;
            for job in jobs {
                let (kind, due, bytes) = match job.buffer {
                    Some(buffer) => (EXPORT, now + buffer.wait_ms, buffer.bytes),
                    None => (ON_EVENT, 0, 0),
                };
                tx.execute(
                    "INSERT INTO webhooks (team_id, connector, url, method, headers, body, kind, connector_id, of_captured, next_attempt_ms, buffered, batch_bytes) VALUES (?1, ?2, '', '', '{}', ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![team, job.connector, job.event, kind, job.connector_id, i64::from(job.of_captured), due, i64::from(job.buffer.is_some()), bytes],
                )?;
            }
            // A buffer that now holds full batches sends them: those rows
            // leave it, due at once.
            for (connector_id, of_captured, buffer) in buffers(jobs) {
                let waiting: Vec<(i64, i64)> = {
                    let mut statement = tx.prepare(&format!(
                        "SELECT id, {EXPORT_SIZE} FROM webhooks WHERE team_id = ?1 AND connector_id = ?2 AND buffered = 1 AND of_captured = ?3 AND status = 'pending' ORDER BY id"
                    ))?;
                    statement
                        .query_map(params![team, connector_id, i64::from(of_captured)], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<_>>()?
                };
                if let Some(last) = buffer.full_through(&waiting) {
                    tx.execute(
                        "UPDATE webhooks SET next_attempt_ms = 0, buffered = 0 WHERE team_id = ?1 AND connector_id = ?2 AND buffered = 1 AND of_captured = ?3 AND status = 'pending' AND id <= ?4",
                        params![team, connector_id, i64::from(of_captured), last],
                    )?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn redeliver_webhook(&self, team: i64, id: i64) -> Result<Redelivery> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let status: Option<String> = tx
                .query_row(
                    "SELECT status FROM webhooks WHERE id = ?1 AND team_id = ?2",
                    params![id, team],
                    |r| r.get(0),
                )
                .optional()?;
            let outcome = match status.as_deref() {
                None => Redelivery::Missing,
                Some("dead") => {
                    tx.execute(
                        "UPDATE webhooks SET status = 'pending', attempts = 0, next_attempt_ms = 0, finished_ms = NULL WHERE id = ?1",
                        [id],
                    )?;
                    Redelivery::Queued
                }
                Some(_) => Redelivery::NotDead,
            };
            tx.commit()?;
            Ok(outcome)
        })
    }

    fn enqueue_webhooks(
        &self,
        team: i64,
        requests: &[sandpipe_runtime::WebhookRequest],
    ) -> Result<()> {
        if requests.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            let tx = c.transaction()?;
            for request in requests {
                tx.execute(
                    "INSERT INTO webhooks (team_id, connector, url, method, headers, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        team,
                        request.connector,
                        request.url,
                        request.method,
                        Value::Object(request.headers.clone()).to_string(),
                        request.body
                    ],
                )?;
            }
            tx.commit()
        })
    }

    fn lease_due_exports(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<WebhookRow>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let rows: Vec<WebhookRow> = {
                let mut statement = tx.prepare(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE status = 'pending' AND kind = 'export' AND {EXPORT_DUE} \
                     ORDER BY team_id, connector_id, of_captured, batch_id, id LIMIT ?2"
                ))?;
                statement.query_map(params![now_ms, limit], webhook_row)?.collect::<rusqlite::Result<_>>()?
            };
            for row in &rows {
                tx.execute("UPDATE webhooks SET next_attempt_ms = ?2, buffered = 0 WHERE id = ?1", params![row.id, lease_until_ms])?;
            }
            tx.commit()?;
            Ok(rows)
        })
    }

    fn batch_finished(
        &self,
        rows: &[(i64, i64)],
        error: Option<&str>,
        next_attempt_ms: Option<i64>,
    ) -> Result<()> {
        let now = now_ms();
        let batch = rows.first().map_or(0, |&(id, _)| id);
        self.with(|c| {
            let tx = c.transaction()?;
            for &(id, attempts) in rows {
                match (error, next_attempt_ms) {
                    (None, _) => tx.execute(
                        "UPDATE webhooks SET status = 'delivered', attempts = ?2, last_error = NULL, finished_ms = ?3 WHERE id = ?1",
                        params![id, attempts, now],
                    ),
                    (Some(error), Some(next)) => tx.execute(
                        "UPDATE webhooks SET attempts = ?2, last_error = ?3, next_attempt_ms = ?4, batch_id = ?5 WHERE id = ?1",
                        params![id, attempts, error, next, batch],
                    ),
                    (Some(error), None) => tx.execute(
                        "UPDATE webhooks SET status = 'dead', attempts = ?2, last_error = ?3, finished_ms = ?4 WHERE id = ?1",
                        params![id, attempts, error, now],
                    ),
                }?;
            }
            tx.commit()
        })
    }

    fn lease_due_webhooks(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<WebhookRow>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let rows: Vec<WebhookRow> = {
                let mut statement = tx.prepare(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE status = 'pending' AND {LEASED_ONE_BY_ONE} AND next_attempt_ms <= ?1 ORDER BY id LIMIT ?2"
                ))?;
                statement.query_map(params![now_ms, limit], webhook_row)?.collect::<rusqlite::Result<_>>()?
            };
            for row in &rows {
                tx.execute("UPDATE webhooks SET next_attempt_ms = ?2 WHERE id = ?1", params![row.id, lease_until_ms])?;
            }
            tx.commit()?;
            Ok(rows)
        })
    }

    fn release_leases(&self, ids: &[i64]) -> Result<()> {
        let now = now_ms();
        self.with(|c| {
            let tx = c.transaction()?;
            for id in ids {
                tx.execute(
                    "UPDATE webhooks SET next_attempt_ms = ?2 WHERE id = ?1 AND status = 'pending'",
                    params![id, now],
                )?;
            }
            tx.commit()
        })
    }

    fn webhooks(&self, team: i64, filter: &WebhookFilter) -> Result<Vec<WebhookRow>> {
        let (bound, page) = filter.page.sql("?4");
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks
                 WHERE team_id = ?1 AND (?2 IS NULL OR status = ?2)
                   AND {CONNECTOR_IS} AND {page}"
            ))?;
            statement
                .query_map(
                    params![team, filter.status, filter.connector, bound],
                    webhook_row,
                )?
                .collect()
        })
    }

    fn prune_webhooks(&self, before_ms: i64) -> Result<usize> {
        // In batches, each its own statement, so a large backlog (the first
        // prune after an upgrade) never holds the connection for long.
        const BATCH: i64 = 5_000;
        let mut pruned = 0;
        loop {
            let deleted = self.with(|c| {
                c.execute(
                    "DELETE FROM webhooks WHERE id IN (SELECT id FROM webhooks \
                     WHERE status != 'pending' AND finished_ms <= ?1 LIMIT ?2)",
                    [before_ms, BATCH],
                )
            })?;
            pruned += deleted;
            if deleted < BATCH as usize {
                return Ok(pruned);
            }
        }
    }
}

/// The buffered connectors among `jobs`: each one's stable id, whether its
/// events were captured, and its buffering, once each.
pub(crate) fn buffers(jobs: &[OnEventJob]) -> Vec<(&str, bool, Buffering)> {
    let mut found: Vec<(&str, bool, Buffering)> = Vec::new();
    for job in jobs {
        if let Some(buffer) = job.buffer {
            let key = (job.connector_id.as_str(), job.of_captured);
            if !found.iter().any(|&(id, captured, _)| (id, captured) == key) {
                found.push((key.0, key.1, buffer));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_sends_its_full_batches_and_keeps_the_last() {
        let buffer = Buffering {
            wait_ms: 10_000,
            bytes: 10,
        };
        // Under the limit: nothing yet.
        assert_eq!(buffer.full_through(&[(1, 4), (2, 4)]), None);
        assert_eq!(buffer.full_through(&[]), None);
        // A third event would pass it: the first two are a full batch.
        assert_eq!(buffer.full_through(&[(1, 4), (2, 4), (3, 4)]), Some(2));
        // An event over the limit alone goes with the batches before it.
        assert_eq!(buffer.full_through(&[(1, 4), (2, 20)]), Some(2));
        assert_eq!(buffer.full_through(&[(7, 11)]), Some(7));
    }

    /// A composed request to `url`, from connector `c (0)`.
    fn request(url: &str) -> sandpipe_runtime::WebhookRequest {
        sandpipe_runtime::WebhookRequest {
            connector: "c (0)".into(),
            url: url.into(),
            method: "POST".into(),
            headers: Map::new(),
            body: None,
        }
    }

    /// A row of a kind this build does not know (a newer sandpipe's, on
    /// the same database) is not leased: this process would send it as a
    /// request, fail, and mark it dead.
    #[test]
    fn a_row_of_an_unknown_kind_is_left_pending() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        store
            .enqueue_webhooks(1, &[request("http://a/"), request("http://b/")])
            .unwrap();
        let rows = store.webhooks(1, &WebhookFilter::default()).unwrap();
        store
            .execute(
                "UPDATE webhooks SET kind = 'from_the_future' WHERE id = ?1",
                [rows[0].id],
            )
            .unwrap();
        let leased: Vec<i64> = store
            .lease_due_webhooks(now_ms(), now_ms() + 60_000, 64)
            .unwrap()
            .iter()
            .map(|row| row.id)
            .collect();
        assert_eq!(leased, [rows[1].id]);
        assert!(
            store
                .lease_due_exports(now_ms(), now_ms() + 60_000, 64)
                .unwrap()
                .is_empty()
        );
        let statuses: Vec<String> = store
            .webhooks(1, &WebhookFilter::default())
            .unwrap()
            .into_iter()
            .map(|row| row.status)
            .collect();
        assert_eq!(statuses, ["pending", "pending"]);
    }

    #[test]
    fn finished_webhooks_are_pruned_after_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        store
            .enqueue_webhooks(
                1,
                &[
                    request("http://a/"),
                    request("http://b/"),
                    request("http://c/"),
                ],
            )
            .unwrap();
        let all = WebhookFilter::default();
        let rows = store.webhooks(1, &all).unwrap();
        let ids = |filter: &WebhookFilter| -> Vec<i64> {
            store
                .webhooks(1, filter)
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect()
        };
        // The next page starts after the last id seen.
        let page = |page| WebhookFilter {
            page,
            ..WebhookFilter::default()
        };
        assert_eq!(
            ids(&page(WebhookPage::After(rows[0].id))),
            [rows[1].id, rows[2].id]
        );
        // Newest first, and the page before an id.
        assert_eq!(
            ids(&page(WebhookPage::Before(None))),
            [rows[2].id, rows[1].id, rows[0].id]
        );
        assert_eq!(
            ids(&page(WebhookPage::Before(Some(rows[2].id)))),
            [rows[1].id, rows[0].id]
        );
        // By connector: its label, or its name.
        for connector in ["c (0)", "c"] {
            let filter = WebhookFilter {
                connector: Some(connector.into()),
                ..WebhookFilter::default()
            };
            assert_eq!(ids(&filter).len(), 3, "{connector}");
        }
        for connector in ["c (1)", "C", "c (0"] {
            let filter = WebhookFilter {
                connector: Some(connector.into()),
                ..WebhookFilter::default()
            };
            assert_eq!(ids(&filter), Vec::<i64>::new(), "{connector}");
        }
        store.webhook_delivered(rows[0].id, 1).unwrap();
        store.webhook_failed(rows[1].id, 1, "down", None).unwrap();
        assert_eq!(
            store.redeliver_webhook(2, rows[1].id).unwrap(),
            Redelivery::Missing
        );
        assert_eq!(
            store.redeliver_webhook(1, rows[0].id).unwrap(),
            Redelivery::NotDead
        );
        assert_eq!(
            store.redeliver_webhook(1, rows[1].id).unwrap(),
            Redelivery::Queued
        );
        let pending = WebhookFilter {
            status: Some("pending"),
            ..WebhookFilter::default()
        };
        assert_eq!(store.webhooks(1, &pending).unwrap().len(), 2);
        store.webhook_failed(rows[1].id, 1, "down", None).unwrap();
        assert_eq!(store.prune_webhooks(now_ms() - 60_000).unwrap(), 0);
        assert_eq!(store.prune_webhooks(now_ms()).unwrap(), 2);
        let left: Vec<String> = store
            .webhooks(1, &all)
            .unwrap()
            .into_iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(left, ["pending"]);
    }
}
