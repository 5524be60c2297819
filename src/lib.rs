//! culex: a single-threaded MQTT broker.
pub mod clock;
pub mod codec;
pub mod engine;
pub mod rng;
