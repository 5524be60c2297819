//! Raw-byte integration tests: each test starts the broker (or uses the one
//! named by `CULEX_TEST_ADDR`) and checks the exact bytes it sends back.

mod harness;

mod abuse;
mod auth;
mod cli;
mod connect;
mod deterministic;
mod faults;
mod flow;
mod http_api;
mod limits;
mod malformed;
mod mqttsn;
mod persistence;
mod publish;
mod retain;
mod session;
mod shutdown;
mod subscribe;
mod transport;
mod will;
