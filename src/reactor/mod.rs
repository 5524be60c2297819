//! The mio reactor (being written).
