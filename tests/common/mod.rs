pub mod alsa;
pub mod toy;
