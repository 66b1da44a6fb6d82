pub mod alsa;
