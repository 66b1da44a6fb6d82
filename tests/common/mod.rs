pub mod alsa;
pub mod log_capture;
pub mod toy;
