//! The one integration-test binary; each module is a feature.

mod browser;
mod crash;
mod device;
mod hostile;
mod interop;
mod lifecycle;
mod relay;
