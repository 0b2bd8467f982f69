//! Paths under /app/ stay in the app directory.
use super::*;

#[test]
fn paths_cannot_leave_the_app_directory() {
    let root = Path::new("/srv/app");
    assert_eq!(resolve(root, "pkg/a.wasm"), Some(root.join("pkg/a.wasm")));
    for bad in ["../secret", "pkg/../../x", "/etc/passwd", "./index.html"] {
        assert_eq!(resolve(root, bad), None, "{bad}");
    }
}
