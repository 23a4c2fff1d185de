//! NMEA 2000: frames from the bus or a capture, fast packets put back together, and
//! messages decoded by canboat's PGN database.

pub mod analyzer;
pub mod bits;
pub mod capture;
pub mod cli;
pub mod database;
pub mod decode;
pub mod fast;
pub mod frame;
pub mod ingest;
pub mod source;

pub use database::{Database, Units};
pub use decode::{Decoded, Value, decode};
pub use frame::{CanId, Frame, Message};
