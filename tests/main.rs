//! The one integration-test binary; each module is a feature.

mod app;
mod browser;
mod clock_skew;
mod crash;
mod device;
mod disk_full;
mod hostile;
mod interop;
mod lifecycle;
mod proxy;
mod relay;
mod soak;
