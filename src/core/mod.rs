//! The pure middle: no threads, no I/O, no clocks.
//!
//! * [`machine`] — the chatter-box state machine: `(state, event) -> actions`.
//! * [`commands`] — which spoken word does what.
//! * [`enrollment`] — teaching the toy its owner's voice: words, takes, prompts, results.
//! * [`clip_order`] — recording order from sequence numbers, not the wall clock.
//!
//! Time is a [`Duration`](std::time::Duration) since the program started, carried inside
//! every event, so a test drives the machine with a fake clock to the millisecond.
pub mod clip_order;
pub mod commands;
pub mod enrollment;
pub mod machine;

pub use commands::{CommandMap, VoiceCommand};
pub use enrollment::{AdaptOutcome, EnrollmentConfig, TakeResult};
pub use machine::{Action, Cue, Event, Input, LedPattern, Machine, MachineConfig, Sound};
