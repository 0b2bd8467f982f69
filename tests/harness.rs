//! Shared helpers for the integration tests: spawning relays and devices,
//! waiting on conditions with deadlines.
