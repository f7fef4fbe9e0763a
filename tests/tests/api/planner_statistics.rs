//! PostgreSQL with autovacuum off (as on this project's own machines) never analyses a table, and the
//! planner, seeing every table as empty, can take the wrong index. A ping's move of its lost-signal check
//! walked every pending timer of the school through the due-time index: 172 pings/s at 10,000 visits.
//! The server analyses its tables itself when autovacuum is off ([`planner_statistics`]).

use homeward_server::db::planner_statistics;
use homeward_tests::{Backend, spawn_app};
use uuid::Uuid;

/// The lost-signal check's move, as a ping makes it.
const POSTPONE: &str = "update timers set due_at = $1 where session_id = $2 and kind = 'signal_check' \
                        and fired_at is null and cancelled_at is null and due_at <= $1";

#[tokio::test]
async fn a_table_that_changed_enough_is_analysed_and_a_ping_s_timer_is_found_by_its_session() {
    let app = spawn_app(Backend::Postgres).await;
    let pool = &app.state.db.pool;
    // Far-future lost-signal checks for 2,000 visits, more than autovacuum's threshold of change.
    let far = 4_102_444_800_000i64; // 2100-01-01
    for chunk in 0..4 {
        let mut sql =
            String::from("insert into timers (timer_id, school_id, kind, session_id, due_at, created_at) values ");
        for i in 0..500 {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('{}', '{}', 'signal_check', '{}', {}, 0)",
                Uuid::new_v4(),
                Uuid::new_v4(),
                Uuid::new_v4(),
                far + chunk * 500 + i
            ));
        }
        sqlx::query(&sql).execute(pool).await.expect("the timers");
    }
    let session: (String,) = sqlx::query_as("select session_id from timers where kind = 'signal_check' limit 1")
        .fetch_one(pool)
        .await
        .expect("a session");

    // PostgreSQL counts a table's changes a moment after the commit (each backend reports at most once
    // a second): wait until all 2,000 are counted, so no count arrives after the analysis.
    let give_up = tokio::time::Instant::now() + homeward_tests::BACKGROUND_WAIT;
    loop {
        let (changed,): (i64,) =
            sqlx::query_as("select n_mod_since_analyze from pg_stat_user_tables where relname = 'timers'")
                .fetch_one(pool)
                .await
                .expect("the table's count of changes");
        if changed >= 2_000 || tokio::time::Instant::now() >= give_up {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let analysed = planner_statistics::refresh(pool).await.expect("analyse");
    assert!(analysed.contains(&"public.timers".to_owned()), "timers analysed: {analysed:?}");
    let (tuples,): (f32,) =
        sqlx::query_as("select reltuples from pg_class where relname = 'timers'").fetch_one(pool).await.expect("stats");
    assert!(tuples >= 2_000.0, "the planner now knows the table's size: {tuples}");

    let plan: Vec<(String,)> = sqlx::query_as(&format!(
        "explain {}",
        POSTPONE.replace("$1", &(far + 10_000).to_string()).replace("$2", &format!("'{}'", session.0))
    ))
    .fetch_all(pool)
    .await
    .expect("the plan");
    let plan: Vec<String> = plan.into_iter().map(|(line,)| line).collect();
    assert!(
        plan.iter().any(|line| line.contains("timers_session_pending")),
        "the timer is found by its session, not by walking the due times: {plan:#?}"
    );

    let again = planner_statistics::refresh(pool).await.expect("analyse again");
    assert!(!again.contains(&"public.timers".to_owned()), "unchanged since: not analysed again ({again:?})");
}
