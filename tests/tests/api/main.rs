//! The black-box API tests, in one test binary: the test command links one executable instead of
//! one per file (linking dominated the build on two cores). Each file is a module, so nextest names
//! a test `api <file>::<test>`, e.g. `api crash::a_crash_while_deadlines_fall_due_loses_nothing_and_repeats_nothing`;
//! select a file's tests with `-E 'test(/^crash::/)'`.
//!
//! nextest runs every test in a process of its own, and the tests that change process-wide state
//! rely on it (`storage_errors` lowers the process's file-size limit): run them with `cargo nextest`,
//! as `scripts/test` does, not `cargo test`.

mod admin_api;
mod audit_anchor;
mod auth_and_access;
mod bad_input;
mod channels;
mod connections;
mod cors;
mod crash;
mod device_sign_in;
mod escalation;
mod hostile_events;
mod ladder_timing;
mod oversight;
mod ping_ingest;
mod planner_statistics;
mod push_endpoint_guard;
mod push_outage;
mod push_service;
mod retention;
mod scale_out;
mod session_lifecycle;
mod shared_board;
mod signals;
mod storage_errors;
mod trusted_proxies;
mod web_client;
