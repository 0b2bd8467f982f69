//! The backoff grows to its cap and its jitter spreads the waits.
use super::*;
use rand::SeedableRng;
use std::time::Duration;

#[test]
fn backoff_grows_to_its_cap_with_jitter_below_the_ceiling() {
    let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut ceilings = Vec::new();
    for _ in 0..8 {
        let c = b.ceiling();
        let d = b.next_delay(&mut rng);
        assert!(d <= c, "{d:?} > {c:?}");
        ceilings.push(c.as_millis());
    }
    assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    b.reset();
    assert_eq!(b.ceiling(), Duration::from_millis(100));
}

#[test]
fn jitter_spreads_the_waits() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let waits: std::collections::BTreeSet<_> = (0..20)
        .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_delay(&mut rng))
        .collect();
    assert!(waits.len() > 15, "{waits:?}");
}
