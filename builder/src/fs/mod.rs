//! File systems the builder writes into partitions.

pub mod ext4;
pub mod fat;
