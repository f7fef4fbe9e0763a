-- More ways to reach a leader: e-mail and SMS beside Web Push, a fallback between them, and the on-call rota.

-- The mobile number text messages go to (E.164), set by admins; null when the person has none.
alter table users add column phone text null;

-- A reach is one message to one person over the step's channels, tried in order. Every delivery row of
-- it shares `reach_id`; `fallback` lists the channels still to try (comma-separated) when this one
-- cannot deliver; `destination` is the e-mail address or phone number the row was sent to.
alter table deliveries add column reach_id text null;
alter table deliveries add column fallback text null;
alter table deliveries add column destination text null;
create index deliveries_reach on deliveries (reach_id);

-- Each school's on-call rota (weekly pattern, dated overrides, term dates) as one validated JSON
-- document, replaced whole so it is never half-written.
create table on_call_rotas (
    school_id text primary key references schools (school_id),
    rota text not null,
    updated_by text null,
    updated_at bigint not null
);

-- The last safety-net check of each planned visit, so the start screen and the notice agree.
create table safety_net_checks (
    session_id text primary key references sessions (session_id),
    school_id text not null,
    checked_at bigint not null,
    ok bigint not null,
    report text not null
);

-- The daily check of leaders' channels looks up when it last ran for each school.
create index audit_log_action on audit_log (school_id, action, at);
