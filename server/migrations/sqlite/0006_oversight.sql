-- Leaders, the DSL and admins: messages to the worker about an alert, the DSL's reviews, and the places
-- staff marked as having no signal.

create table alert_messages (
    message_id text primary key,
    school_id text not null references schools (school_id),
    alert_id text not null references alerts (alert_id),
    session_id text not null references sessions (session_id),
    sender_id text not null references users (user_id),
    direction text not null,
    body text not null,
    sent_at bigint not null
);
create index alert_messages_alert on alert_messages (alert_id, sent_at);
create index alert_messages_session on alert_messages (session_id, sent_at);

-- One review per subject (a session with a concern, or a resolved alert): reviewed once, by the DSL.
create table reviews (
    subject_id text primary key,
    school_id text not null references schools (school_id),
    subject_kind text not null,
    reviewed_by text not null references users (user_id),
    reviewed_at bigint not null,
    action_taken text not null
);
create index reviews_school on reviews (school_id);

create table no_signal_marks (
    mark_id text primary key,
    school_id text not null references schools (school_id),
    user_id text not null references users (user_id),
    latitude double precision not null,
    longitude double precision not null,
    note text not null,
    created_at bigint not null
);
create index no_signal_marks_school on no_signal_marks (school_id, created_at);
create index alerts_school_raised on alerts (school_id, raised_at);
create index sessions_school_start on sessions (school_id, planned_start);
