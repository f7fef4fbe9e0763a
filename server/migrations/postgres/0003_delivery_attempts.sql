-- Every attempt to deliver a message, with what the push service said: the alert's delivery history.
create table delivery_attempts (
    delivery_id text not null references deliveries (delivery_id),
    attempt bigint not null,
    at bigint not null,
    outcome text not null,
    status_code bigint null,
    error text null,
    primary key (delivery_id, attempt)
);
