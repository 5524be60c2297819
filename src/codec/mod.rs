//! Wire codecs: pure functions from bytes to values and back.
//!
//! Nothing in this module touches a socket, a file, the clock or the logger. Decoding never
//! panics, checks every length before reading, and allocates no more than the length the input
//! itself declares (bounded by the frame the caller hands over).

pub mod cursor;
pub mod http;
pub mod mqtt;
pub mod mqttsn;
