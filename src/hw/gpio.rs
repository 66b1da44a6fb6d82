//! rppal backends for the button and LEDs (TODO).
