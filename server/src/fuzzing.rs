//! Entry points for the fuzz targets in `server/fuzz/`: thin wrappers over
//! crate-private checks (the hard rules, token verification). Not part of
//! the relay's API; hidden from its docs.

use automerge::Automerge;
use chrono::{DateTime, Utc};
use schema::Role;

use crate::auth::{self, Keys};
use crate::validate::{self, Layout, Limits};

/// What the hard rules made of one sync message's chunks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Changes that passed the hard rules.
    pub passed: usize,
    /// Changes refused, or the whole message refused.
    pub refused: usize,
}

/// Unpacks `chunks` as a sync message's changes and checks each against the
/// layout of `doc` as a `role` would, then merges the ones that pass into a
/// fork of `doc` (as the hub's trial merge does). Must never panic.
pub fn validate_changes(doc: &Automerge, chunks: &[&[u8]], role: Role) -> Checked {
    let limits = Limits::default();
    let changes = match validate::changes_in(chunks.iter().copied(), &limits) {
        Ok(c) => c,
        Err(_) => {
            return Checked {
                passed: 0,
                refused: 1,
            };
        }
    };
    let mut layout = Layout::of(doc);
    let mut out = Checked::default();
    let mut passed = Vec::new();
    for change in changes {
        match validate::check_ops(&change, &mut layout, role, &limits) {
            Ok(()) => {
                out.passed += 1;
                passed.push(change);
            }
            Err(_) => out.refused += 1,
        }
    }
    let (ready, _waiting) = validate::applicable(doc, passed);
    let mut fork = doc.fork();
    let _ = validate::guarded("a trial merge", || fork.apply_changes(ready));
    out
}

/// A key set with one fresh key, and a token it signed for `manager` on
/// `manager-web` valid from `now` for an hour.
///
/// # Panics
/// Never: the key set is not empty.
pub fn keys_and_token(now: DateTime<Utc>) -> (Keys, String) {
    let keys = Keys::new(vec![auth::new_key()]);
    let token = keys
        .issue(
            "manager",
            "manager-web",
            "session",
            now,
            chrono::Duration::hours(1),
        )
        .unwrap_or_default();
    (keys, token)
}
