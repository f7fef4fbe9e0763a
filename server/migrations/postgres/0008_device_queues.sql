-- A message never overtakes an earlier one to the same device (or e-mail address or phone number)
-- that is being retried: `queue_order` numbers deliveries as they are inserted, the order they go out
-- in behind a retry. `held_since` marks a delivery waiting behind an earlier one that is being
-- retried: its reach moves on to the next channel at once instead of waiting for the device.
alter table deliveries add column queue_order bigint null;
alter table deliveries add column held_since bigint null;
update deliveries d set queue_order = o.n
    from (select delivery_id, row_number() over (order by created_at, delivery_id) as n from deliveries) o
    where o.delivery_id = d.delivery_id;
create index deliveries_queue_order on deliveries (queue_order);
create index deliveries_device_queue on deliveries (subscription_id, queue_order) where status in ('pending', 'sending');
create index deliveries_address_queue on deliveries (destination, queue_order) where status in ('pending', 'sending');
