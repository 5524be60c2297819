//! culex: a single-threaded MQTT broker.
pub mod api;
pub mod auth;
pub mod bridge;
pub mod cli;
pub mod clock;
pub mod codec;
pub mod config;
pub mod engine;
pub mod fault;
pub mod gateway;
pub mod reactor;
pub mod rng;
pub mod store;
pub mod trace;
pub mod transport;
