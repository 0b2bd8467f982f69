//! The one integration-test binary; each module is a feature.

mod access;
mod app;
mod browser;
mod catch_up;
mod clock_skew;
mod crash;
mod device;
mod disk_full;
mod edge;
mod fees;
mod forgery;
mod golden_week;
mod hostile;
mod interop;
mod lifecycle;
mod metrics;
mod ops;
mod powercut;
mod property;
mod proxy;
mod relay;
mod soak;
mod tidy;
mod time_zone;
