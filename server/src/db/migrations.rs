//! Schema migrations, one list per backend, applied in order and recorded in `schema_migrations`.

use anyhow::Context;
use sqlx::Executor;

use super::{Backend, Db};

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_foundation.sql")),
    (2, include_str!("../../migrations/sqlite/0002_escalation.sql")),
    (3, include_str!("../../migrations/sqlite/0003_delivery_attempts.sql")),
    (4, include_str!("../../migrations/sqlite/0004_pending_timer_lookups.sql")),
    (5, include_str!("../../migrations/sqlite/0005_channels_and_rota.sql")),
    (6, include_str!("../../migrations/sqlite/0006_oversight.sql")),
    (7, include_str!("../../migrations/sqlite/0007_device_order_and_alerted_visits.sql")),
    (8, include_str!("../../migrations/sqlite/0008_device_sign_ins.sql")),
    (9, include_str!("../../migrations/sqlite/0009_audit_key.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_foundation.sql")),
    (2, include_str!("../../migrations/postgres/0002_escalation.sql")),
    (3, include_str!("../../migrations/postgres/0003_delivery_attempts.sql")),
    (4, include_str!("../../migrations/postgres/0004_pending_timer_lookups.sql")),
    (5, include_str!("../../migrations/postgres/0005_channels_and_rota.sql")),
    (6, include_str!("../../migrations/postgres/0006_oversight.sql")),
    (7, include_str!("../../migrations/postgres/0007_device_order_and_alerted_visits.sql")),
    (8, include_str!("../../migrations/postgres/0008_device_sign_ins.sql")),
    (9, include_str!("../../migrations/postgres/0009_audit_key.sql")),
];

/// Arbitrary but fixed: every server process migrating the same PostgreSQL takes this lock first.
const MIGRATION_LOCK: i64 = 0x686f_6d65;

pub async fn run(db: &Db) -> anyhow::Result<()> {
    let migrations = match db.backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let mut tx = db.begin().await?;
    if db.backend == Backend::Postgres {
        sqlx::query("select pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(tx.conn()).await?;
    }
    tx.conn()
        .execute(
            "create table if not exists schema_migrations (version bigint primary key, applied_at bigint not null)",
        )
        .await?;
    let applied: Vec<(i64,)> = sqlx::query_as("select version from schema_migrations").fetch_all(tx.conn()).await?;
    for (version, sql) in migrations {
        if applied.iter().any(|(v,)| v == version) {
            continue;
        }
        tx.conn().execute(sqlx::raw_sql(sql)).await.with_context(|| format!("migration {version} failed"))?;
        sqlx::query("insert into schema_migrations (version, applied_at) values ($1, $2)")
            .bind(version)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
