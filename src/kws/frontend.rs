//! TODO: being written (see kws/mod.rs).
