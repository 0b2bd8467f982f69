//! The one integration-test binary; each module is a feature.

mod access;
mod app;
mod browser;
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
mod powercut;
mod property;
mod proxy;
mod relay;
mod soak;
mod time_zone;
