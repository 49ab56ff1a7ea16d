//! [`TaskStore`] on PostgreSQL: the same claim and finish statements as on
//! SQLite ([`super::super::tasks`]), where the row lock of `ON CONFLICT`
//! decides between processes.

use super::{PgStore, pg_error};
use crate::serve::store::tasks::{CLAIM, FINISH};
use crate::serve::store::{Result, TaskClaim, TaskStore};

impl TaskStore for PgStore {
    fn claim_task(&self, claim: &TaskClaim<'_>) -> Result<bool> {
        let claim = claim.clone();
        self.run(|client| async move {
            let changed = client
                .execute(
                    CLAIM,
                    &[
                        &claim.team,
                        &claim.connector_id,
                        &claim.task,
                        &claim.period,
                        &claim.lease_until_ms,
                        &claim.now_ms,
                    ],
                )
                .await
                .map_err(pg_error)?;
            Ok(changed == 1)
        })
    }

    fn finish_task(&self, team: i64, connector_id: &str, task: &str, period: i64) -> Result<()> {
        self.run(|client| async move {
            client
                .execute(FINISH, &[&team, &connector_id, &task, &period])
                .await
                .map_err(pg_error)?;
            Ok(())
        })
    }
}
