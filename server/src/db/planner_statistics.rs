//! PostgreSQL picks each query's index from its tables' statistics, which autovacuum keeps up to
//! date. An installation may run with autovacuum off (this project's own test machines do). A table
//! that has never been analysed then looks empty to the planner. Every index on it looks equally
//! cheap, and the planner can take the wrong one.
//!
//! This was measured. A ping moves its session's lost-signal check, and that update found the timer
//! through the due-time index instead of the session's. It walked every pending timer in the school
//! for each ping: 30–60 ms a ping, 172 pings/s in all at 10,000 visits.
//!
//! So when autovacuum is off, the server analyses its own tables itself. It does this at start and
//! then every minute. It uses autovacuum's own rule for when a table has changed enough, and says so
//! in its log.

use std::time::Duration;

use sqlx::AnyPool;

/// How often the tables are looked at (autovacuum's default naptime).
pub const EVERY: Duration = Duration::from_secs(60);

/// Whether PostgreSQL's autovacuum is off, leaving the statistics to us.
pub async fn autovacuum_is_off(pool: &AnyPool) -> Result<bool, sqlx::Error> {
    let (setting,): (String,) = sqlx::query_as("select current_setting('autovacuum')").fetch_one(pool).await?;
    Ok(setting != "on")
}

/// Analyse every table that has changed enough since it was last analysed. Autovacuum's default rule is
/// more than 50 rows plus a tenth of the table. Returns the tables analysed.
pub async fn refresh(pool: &AnyPool) -> Result<Vec<String>, sqlx::Error> {
    let stale: Vec<(String,)> = sqlx::query_as(
        "select format('%I.%I', schemaname, relname) from pg_stat_user_tables \
         where n_mod_since_analyze > 50 + 0.1 * n_live_tup order by 1",
    )
    .fetch_all(pool)
    .await?;
    let mut analysed = Vec::with_capacity(stale.len());
    for (table,) in stale {
        sqlx::query(&format!("analyze {table}")).execute(pool).await?;
        analysed.push(table);
    }
    Ok(analysed)
}

/// Keep the statistics fresh for as long as the process runs, if autovacuum does not.
pub async fn keep_fresh(pool: AnyPool) {
    match autovacuum_is_off(&pool).await {
        Ok(true) => tracing::warn!(
            "PostgreSQL's autovacuum is off: this server analyses its tables every minute so queries keep \
             their indexes (turn autovacuum on to reclaim dead rows too)"
        ),
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not read PostgreSQL's autovacuum setting; analysing the tables");
        }
    }
    loop {
        if let Err(e) = refresh(&pool).await {
            tracing::warn!(error = %e, "could not analyse the tables");
        }
        tokio::time::sleep(EVERY).await;
    }
}
