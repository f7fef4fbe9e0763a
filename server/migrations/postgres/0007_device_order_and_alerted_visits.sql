-- Each device's messages go out in the order they were written, even after its push service was down.
-- `queue_order` is the order written; while a retried message holds a device (`held_by`), the messages
-- behind it wait (their `next_attempt_at` is far in the future) and are released, to be sent one after
-- another (`in_order`), once it goes through.
alter table deliveries add column queue_order bigserial;
alter table deliveries add column in_order bigint not null default 0;
alter table push_subscriptions add column held_by text null;
create index deliveries_device_queue on deliveries (subscription_id) where status = 'pending';
-- Claims whose process died are found without walking the queue of pending messages.
create index deliveries_leases on deliveries (lease_until) where status = 'sending';
-- Whether a visit has ever had an alert (responders may then see its household notes), kept on the
-- visit: every read of a visit asked the alerts table, which grows without end.
alter table sessions add column has_alert bigint not null default 0;
update sessions set has_alert = 1 where exists (select 1 from alerts a where a.session_id = sessions.session_id);
