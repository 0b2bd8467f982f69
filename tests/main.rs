//! The one integration-test binary; each module is a feature.

mod lifecycle;
mod relay;
