-- The audit log's hashes are keyed from now on (HMAC-SHA256 with a key kept outside the database).
-- Each school's entries so far were chained with plain SHA-256: they are still checked that way, up to
-- the seq recorded here, where its keyed chain begins. A school with no row here is keyed from entry 1.
create table audit_keyed_from (
    school_id text primary key references schools (school_id),
    seq bigint not null
);
insert into audit_keyed_from (school_id, seq) select school_id, max(seq) + 1 from audit_log group by school_id;

-- Written once, here: the database refuses any later change.
create trigger audit_keyed_from_no_insert before insert on audit_keyed_from
begin
    select raise(abort, 'where the keyed audit log begins is fixed');
end;
create trigger audit_keyed_from_no_update before update on audit_keyed_from
begin
    select raise(abort, 'where the keyed audit log begins is fixed');
end;
create trigger audit_keyed_from_no_delete before delete on audit_keyed_from
begin
    select raise(abort, 'where the keyed audit log begins is fixed');
end;
