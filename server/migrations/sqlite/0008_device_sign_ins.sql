-- A device sign-in: one per phone or browser that signed in. Its refresh credentials renew short-lived
-- access tokens; each is used once and replaced by its successor, so the one in use is the device's only
-- live credential, and a used one presented again ends the device (someone copied it).
create table devices (
    device_id text primary key,
    user_id text not null references users (user_id),
    created_at bigint not null,
    last_renewed_at bigint not null,
    expires_at bigint not null,
    revoked_at bigint null,
    revoked_reason text null
);
create index devices_user on devices (user_id);

create table refresh_tokens (
    token_hash text primary key,
    device_id text not null references devices (device_id),
    created_at bigint not null,
    -- Set when the credential was exchanged for its successor.
    used_at bigint null,
    successor_hash text null
);
create index refresh_tokens_device on refresh_tokens (device_id);

-- Access tokens issued before devices existed have none and simply run out.
alter table access_tokens add column device_id text null references devices (device_id);
create index access_tokens_device on access_tokens (device_id);
