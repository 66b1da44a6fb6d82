//! With the crash-on-panic hook installed (as `run` and `sim` do), a panic inside
//! `contain_panics` is an error for the caller, not the end of the process: the WAV decoder
//! relies on this for files it cannot trust. A binary of its own, because the hook is
//! process-wide and ends the process on any other panic.

use chatterbox::supervise::{contain_panics, install_panic_exit};

#[test]
fn a_contained_panic_is_an_error_and_the_process_lives_on() {
    install_panic_exit();
    let caught = contain_panics(|| -> u32 { panic!("a decoder bug") });
    assert!(caught.is_err());
    // Nested use restores the outer state.
    let outer = contain_panics(|| {
        let inner = contain_panics(|| -> u32 { panic!("inner") });
        assert!(inner.is_err());
        panic!("outer, still contained")
    });
    assert!(outer.is_err());
    assert_eq!(contain_panics(|| 7).ok(), Some(7));
}
