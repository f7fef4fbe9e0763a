-- Times are unix milliseconds (bigint), ids are UUID text, flags are 0/1: the same shapes on both databases.
create table schools (
    school_id text primary key,
    name text not null,
    safe_and_well_needs_approval bigint not null default 1,
    approval_from_risk text null default 'medium',
    high_risk_needs_companion bigint not null default 1,
    location_retention_days bigint not null default 30,
    created_at bigint not null
);

create table users (
    user_id text primary key,
    school_id text not null references schools (school_id),
    email text not null unique,
    name text not null,
    password_hash text not null,
    roles text not null,
    line_manager_id text null references users (user_id),
    active bigint not null default 1,
    safe_pin_hash text null,
    duress_pin_hash text null,
    created_at bigint not null
);
create index users_school on users (school_id);

create table access_tokens (
    token_hash text primary key,
    user_id text not null references users (user_id),
    created_at bigint not null,
    expires_at bigint not null,
    revoked_at bigint null
);
create index access_tokens_user on access_tokens (user_id);

create table escalation_plans (
    plan_id text primary key,
    school_id text not null references schools (school_id),
    name text not null,
    is_default bigint not null default 0,
    steps text not null,
    repeat_every_seconds bigint not null,
    created_at bigint not null,
    updated_at bigint not null,
    unique (school_id, name)
);

create table sessions (
    session_id text primary key,
    school_id text not null references schools (school_id),
    worker_id text not null references users (user_id),
    companion_id text null references users (user_id),
    kind text not null,
    sub_kind text null,
    address text not null,
    latitude double precision null,
    longitude double precision null,
    geofence_radius_m bigint not null,
    pupil_reference text null,
    household_notes text not null,
    planned_start bigint not null,
    expected_duration_minutes bigint not null,
    check_in_interval_minutes bigint null,
    escalation_plan_id text not null references escalation_plans (plan_id),
    risk_assessment text not null,
    risk_level text not null,
    approval_required bigint not null,
    approval_status text not null,
    approval_reason text null,
    approval_decided_by text null,
    approval_decided_at bigint null,
    status text not null,
    alarm text null,
    deadline bigint null,
    started_at bigint null,
    ended_at bigint null,
    last_check_in bigint null,
    late_check_ins bigint not null default 0,
    outcome text null,
    concern text null,
    created_at bigint not null,
    updated_at bigint not null
);
create index sessions_school_status on sessions (school_id, status);
create index sessions_worker on sessions (worker_id);

create table session_events (
    event_id text primary key,
    session_id text not null references sessions (session_id),
    school_id text not null,
    actor_id text null,
    source text not null,
    kind text not null,
    body text not null,
    occurred_at bigint not null,
    received_at bigint not null
);
create index session_events_session on session_events (session_id, occurred_at);

create table location_pings (
    ping_id text primary key,
    session_id text not null references sessions (session_id),
    school_id text not null,
    user_id text not null,
    at bigint not null,
    latitude double precision not null,
    longitude double precision not null,
    accuracy_m double precision not null,
    battery_percent bigint null,
    received_at bigint not null
);
create index location_pings_session on location_pings (session_id, at);

create table audit_log (
    school_id text not null references schools (school_id),
    seq bigint not null,
    at bigint not null,
    actor_id text null,
    action text not null,
    subject text not null,
    detail text not null,
    prev_hash text not null,
    hash text not null,
    primary key (school_id, seq)
);

-- The audit log is append-only: the database itself refuses edits and deletions.
create trigger audit_log_no_update before update on audit_log
begin
    select raise(abort, 'the audit log is append-only');
end;
create trigger audit_log_no_delete before delete on audit_log
begin
    select raise(abort, 'the audit log is append-only');
end;
