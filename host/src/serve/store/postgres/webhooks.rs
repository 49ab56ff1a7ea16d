//! [`WebhookStore`] on PostgreSQL: a queue any process may deliver from. A
//! claim is one statement over `FOR UPDATE SKIP LOCKED` rows, so two processes
//! never lease the same row; it counts the attempt and sets a lease
//! (`next_attempt_ms`) that expires if the process dies mid-delivery, after
//! which any process claims the row again (at-least-once; the cut attempt
//! stays counted). A row given back unattempted (its lease could not cover
//! an attempt) has the attempt taken back.

use super::logs::CONNECTOR_IS;
use super::{PgStore, pg_error};
use crate::serve::store::webhooks::{
    EXPORT, EXPORT_DUE, LEASED_ONE_BY_ONE, ON_EVENT, OnEventJob, WEBHOOK_COLUMNS, buffers,
};
use crate::serve::store::{Redelivery, Result, WebhookFilter, WebhookRow, WebhookStore, now_ms};
use serde_json::Value;

fn webhook_row(r: &tokio_postgres::Row) -> WebhookRow {
    let headers: String = r.get(4);
    WebhookRow {
        id: r.get(0),
        connector: r.get(1),
        url: r.get(2),
        method: r.get(3),
        headers: serde_json::from_str(&headers).unwrap_or_default(),
        body: r.get(5),
        status: r.get(6),
        attempts: r.get(7),
        last_error: r.get(8),
        created_at: r.get(9),
        team: r.get(10),
        kind: r.get(11),
        connector_id: r.get(12),
        of_captured: r.get::<_, i32>(13) != 0,
        batch_bytes: r.get(14),
        batch_id: r.get(15),
    }
}

impl WebhookStore for PgStore {
    fn enqueue_on_events(&self, team: i64, jobs: &[OnEventJob]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        self.run(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            let insert = tx
                .prepare(
                    "INSERT INTO webhooks (team_id, connector, url, method, headers, body, kind, connector_id, of_captured, next_attempt_ms, buffered, batch_bytes) VALUES ($1, $2, '', '', '{}', $3, $4, $5, $6, $7, $8, $9)",
                )
                .await
                .map_err(pg_error)?;
            for job in jobs {
                let (kind, due, bytes) = match job.buffer {
                    Some(buffer) => (EXPORT, now + buffer.wait_ms, buffer.bytes),
                    None => (ON_EVENT, 0, 0),
                };
                tx.execute(
                    &insert,
                    &[
                        &team,
                        &job.connector,
                        &job.event,
                        &kind,
                        &job.connector_id,
                        &i32::from(job.of_captured),
                        &due,
                        &i32::from(job.buffer.is_some()),
                        &bytes,
                    ],
                )
                .await
                .map_err(pg_error)?;
            }
            // A buffer that now holds full batches sends them. One process
            // at a time adds to a buffer (a lock on its key for the
            // transaction), so two adding at once see each other's rows.
            for (connector_id, of_captured, buffer) in buffers(jobs) {
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1), $2)",
                    &[&format!("export:{team}:{connector_id}"), &i32::from(of_captured)],
                )
                .await
                .map_err(pg_error)?;
                let waiting: Vec<(i64, i64)> = tx
                    .query(
                        "SELECT id, octet_length(body)::BIGINT + 1 FROM webhooks WHERE team_id = $1 AND connector_id = $2 AND buffered = 1 AND of_captured = $3 AND status = 'pending' ORDER BY id",
                        &[&team, &connector_id, &i32::from(of_captured)],
                    )
                    .await
                    .map_err(pg_error)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
                if let Some(last) = buffer.full_through(&waiting) {
                    tx.execute(
                        "UPDATE webhooks SET next_attempt_ms = 0, buffered = 0 WHERE team_id = $1 AND connector_id = $2 AND buffered = 1 AND of_captured = $3 AND status = 'pending' AND id <= $4",
                        &[&team, &connector_id, &i32::from(of_captured), &last],
                    )
                    .await
                    .map_err(pg_error)?;
                }
            }
            tx.commit().await.map_err(pg_error)?;
            Ok(())
        })
    }

    fn redeliver_webhook(&self, team: i64, id: i64) -> Result<Redelivery> {
        self.run(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            let status: Option<String> = tx
                .query_opt(
                    "SELECT status FROM webhooks WHERE id = $1 AND team_id = $2 FOR UPDATE",
                    &[&id, &team],
                )
                .await
                .map_err(pg_error)?
                .map(|r| r.get(0));
            let outcome = match status.as_deref() {
                None => Redelivery::Missing,
                Some("dead") => {
                    tx.execute(
                        "UPDATE webhooks SET status = 'pending', attempts = 0, next_attempt_ms = 0, finished_ms = NULL WHERE id = $1",
                        &[&id],
                    )
                    .await
                    .map_err(pg_error)?;
                    Redelivery::Queued
                }
                Some(_) => Redelivery::NotDead,
            };
            tx.commit().await.map_err(pg_error)?;
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
        self.run(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            let insert = tx
                .prepare(
                    "INSERT INTO webhooks (team_id, connector, url, method, headers, body) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await
                .map_err(pg_error)?;
            for request in requests {
                let headers = Value::Object(request.headers.clone()).to_string();
                tx.execute(
                    &insert,
                    &[&team, &request.connector, &request.url, &request.method, &headers, &request.body],
                )
                .await
                .map_err(pg_error)?;
            }
            tx.commit().await.map_err(pg_error)
        })
    }

    fn lease_due_exports(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<WebhookRow>> {
        self.run(|client| async move {
            let rows = client
                .query(
                    &format!(
                        "UPDATE webhooks SET next_attempt_ms = $2, attempts = attempts + 1, buffered = 0
                         WHERE id IN (SELECT id FROM webhooks w WHERE status = 'pending' AND kind = 'export' AND {due}
                                      ORDER BY team_id, connector_id, of_captured, batch_id, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                         RETURNING {WEBHOOK_COLUMNS}",
                        due = EXPORT_DUE.replace("?1", "$1"),
                    ),
                    &[&now_ms, &lease_until_ms, &limit],
                )
                .await
                .map_err(pg_error)?;
            let mut leased: Vec<WebhookRow> = rows
                .iter()
                .map(|r| {
                    let mut row = webhook_row(r);
                    row.attempts -= 1;
                    row
                })
                .collect();
            leased.sort_by(|a, b| {
                (a.team, &a.connector_id, a.of_captured, a.batch_id, a.id)
                    .cmp(&(b.team, &b.connector_id, b.of_captured, b.batch_id, b.id))
            });
            Ok(leased)
        })
    }

    fn batch_finished(
        &self,
        rows: &[(i64, i64)],
        error: Option<&str>,
        next_attempt_ms: Option<i64>,
    ) -> Result<()> {
        let now = now_ms();
        let error = error.map(str::to_string);
        let batch = rows.first().map_or(0, |&(id, _)| id);
        self.run(|mut client| async move {
            let tx = client.transaction().await.map_err(pg_error)?;
            // A failure is kept only for a pending row: another process may
            // have delivered it since this one's lease expired.
            for &(id, attempts) in rows {
                match (&error, next_attempt_ms) {
                    (None, _) => tx.execute(
                        "UPDATE webhooks SET status = 'delivered', attempts = GREATEST(attempts, $2), last_error = NULL, finished_ms = $3 WHERE id = $1",
                        &[&id, &attempts, &now],
                    ).await,
                    (Some(error), Some(next)) => tx.execute(
                        "UPDATE webhooks SET attempts = GREATEST(attempts, $2), last_error = $3, next_attempt_ms = $4, batch_id = $5 WHERE id = $1 AND status = 'pending'",
                        &[&id, &attempts, error, &next, &batch],
                    ).await,
                    (Some(error), None) => tx.execute(
                        "UPDATE webhooks SET status = 'dead', attempts = GREATEST(attempts, $2), last_error = $3, finished_ms = $4 WHERE id = $1 AND status = 'pending'",
                        &[&id, &attempts, error, &now],
                    ).await,
                }
                .map_err(pg_error)?;
            }
            tx.commit().await.map_err(pg_error)?;
            Ok(())
        })
    }

    fn lease_due_webhooks(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<WebhookRow>> {
        self.run(|client| async move {
            let rows = client
                .query(
                    &format!(
                        "UPDATE webhooks SET next_attempt_ms = $2, attempts = attempts + 1
                         WHERE id IN (SELECT id FROM webhooks WHERE status = 'pending' AND {LEASED_ONE_BY_ONE} AND next_attempt_ms <= $1
                                      ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
                         RETURNING {WEBHOOK_COLUMNS}"
                    ),
                    &[&now_ms, &lease_until_ms, &limit],
                )
                .await
                .map_err(pg_error)?;
            let mut leased: Vec<WebhookRow> = rows
                .iter()
                .map(|r| {
                    let mut row = webhook_row(r);
                    // The worker counts the attempt it makes from the ones before it.
                    row.attempts -= 1;
                    row
                })
                .collect();
            leased.sort_by_key(|row| row.id);
            Ok(leased)
        })
    }

    fn release_leases(&self, ids: &[i64]) -> Result<()> {
        let now = now_ms();
        self.run(|client| async move {
            // The lease counted an attempt that was not made.
            client
                .execute(
                    "UPDATE webhooks SET next_attempt_ms = $2, attempts = GREATEST(attempts - 1, 0) WHERE id = ANY($1) AND status = 'pending'",
                    &[&ids, &now],
                )
                .await
                .map_err(pg_error)?;
            Ok(())
        })
    }

    fn webhooks(&self, team: i64, filter: &WebhookFilter) -> Result<Vec<WebhookRow>> {
        let (bound, page) = filter.page.sql("$4");
        let (status, connector) = (filter.status, filter.connector.clone());
        self.run(|client| async move {
            let rows = client
                .query(
                    &format!(
                        "SELECT {WEBHOOK_COLUMNS} FROM webhooks
                         WHERE team_id = $1 AND ($2::TEXT IS NULL OR status = $2)
                           AND {CONNECTOR_IS} AND {page}"
                    ),
                    &[&team, &status, &connector, &bound],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(webhook_row).collect())
        })
    }

    fn prune_webhooks(&self, before_ms: i64) -> Result<usize> {
        const BATCH: i64 = 5_000;
        let mut pruned = 0;
        loop {
            let deleted = self.run(|client| async move {
                client
                    .execute(
                        "DELETE FROM webhooks WHERE id IN (SELECT id FROM webhooks
                         WHERE status != 'pending' AND finished_ms <= $1 LIMIT $2)",
                        &[&before_ms, &BATCH],
                    )
                    .await
                    .map_err(pg_error)
            })?;
            pruned += deleted as usize;
            if deleted < BATCH as u64 {
                return Ok(pruned);
            }
        }
    }
}
