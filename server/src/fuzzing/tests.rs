//! The fuzz targets' helpers build what they say they build.

/// The fuzz target's branch builder makes the changes it says it makes: a
/// reused id is refused, a fresh entry by eng1 passes, a forged author not.
#[test]
fn the_fuzz_targets_branch_builder_builds_real_forgeries() {
    let b = super::Branches::new();
    // Built on the first version, an event reusing the third id (the accept).
    let reuse = b.change(&[0, 1, 2, 0, 2]);
    assert_eq!(
        b.judge(&reuse),
        super::Checked {
            passed: 0,
            refused: 1
        }
    );
    // A fresh note by eng1 on the second version.
    let note = b.change(&[1, 0x80, 0, 0, 0]);
    assert_eq!(
        b.judge(&note),
        super::Checked {
            passed: 1,
            refused: 0
        }
    );
    // A fresh attachment claiming the manager wrote it.
    let forged = b.change(&[2, 0xc0, 0, 2, 0]);
    assert_eq!(
        b.judge(&forged),
        super::Checked {
            passed: 0,
            refused: 1
        }
    );
}
