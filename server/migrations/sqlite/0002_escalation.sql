-- The escalation engine: the database is the timer.

create table alerts (
    alert_id text primary key,
    school_id text not null references schools (school_id),
    session_id text not null references sessions (session_id),
    kind text not null,
    status text not null,
    escalation_plan_id text not null,
    steps_fired bigint not null default 0,
    instruction text null,
    trigger_at bigint not null,
    raised_at bigint not null,
    acknowledged_by text null,
    acknowledged_at bigint null,
    resolved_by text null,
    resolved_at bigint null,
    resolution text null,
    resolution_notes text null,
    stood_down_at bigint null,
    last_latitude double precision null,
    last_longitude double precision null,
    updated_at bigint not null
);
create index alerts_session on alerts (session_id);
create index alerts_school_status on alerts (school_id, status);

-- Everything that must happen at a time: session deadlines, escalation steps, repeats, ownership
-- timeouts. Each row fires once: `fired_at` is set in the same transaction as its effects.
create table timers (
    timer_id text primary key,
    school_id text not null,
    kind text not null,
    session_id text null,
    alert_id text null,
    step_index bigint null,
    due_at bigint not null,
    fired_at bigint null,
    cancelled_at bigint null,
    created_at bigint not null
);
create index timers_pending on timers (due_at) where fired_at is null and cancelled_at is null;
create index timers_session on timers (session_id);
create index timers_alert on timers (alert_id);

create table push_subscriptions (
    subscription_id text primary key,
    user_id text not null references users (user_id),
    school_id text not null,
    endpoint text not null unique,
    p256dh text not null,
    auth text not null,
    created_at bigint not null,
    last_success_at bigint null
);
create index push_subscriptions_user on push_subscriptions (user_id);

-- The outbox: one row per message to one device (or one row saying the recipient had none).
create table deliveries (
    delivery_id text primary key,
    school_id text not null,
    alert_id text not null references alerts (alert_id),
    recipient_id text null,
    subscription_id text null,
    channel text not null,
    purpose text not null,
    step_index bigint null,
    payload text not null,
    urgency text not null,
    ttl_seconds bigint not null,
    topic text not null,
    status text not null,
    attempts bigint not null default 0,
    next_attempt_at bigint not null,
    lease_until bigint null,
    last_status_code bigint null,
    last_error text null,
    created_at bigint not null,
    sent_at bigint null
);
create index deliveries_due on deliveries (next_attempt_at) where status in ('pending', 'sending');
create index deliveries_alert on deliveries (alert_id);

-- Keys the server generates once and keeps (the VAPID key pair), shared by every server process.
create table server_keys (
    name text primary key,
    value text not null,
    created_at bigint not null
);
