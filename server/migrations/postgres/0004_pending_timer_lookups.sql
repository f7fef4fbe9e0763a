-- Cancelling a session's or an alert's pending timers looks only at pending rows: with many fired
-- timers kept for the record, the plain indexes make every cancel visit them all.
create index timers_session_pending on timers (session_id, kind) where fired_at is null and cancelled_at is null;
create index timers_alert_pending on timers (alert_id) where alert_id is not null and fired_at is null and cancelled_at is null;
