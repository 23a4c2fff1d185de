//! The HTTP machinery below the routes: the state every route shares and its extractors,
//! the guards every request passes first, and the connection server with its limits.

pub mod admission;
pub mod conn;
pub mod download;
pub mod extract;
pub mod guard;
pub mod hosts;
pub mod state;

pub use extract::{Client, Owner, Reader};
pub use state::{AppState, Shared};
