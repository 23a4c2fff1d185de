//! d3kos-build: turns a recipe, a board and a root file system into a bootable disk image and
//! its release artifacts, bit-identical for identical inputs.

pub mod artifacts;
pub mod assemble;
pub mod base;
pub mod boot;
pub mod build;
pub mod compile;
pub mod config;
pub mod customise;
pub mod digest;
pub mod fs;
pub mod ids;
pub mod pack;
pub mod probe;
pub mod rootfs;
pub use appliance::time;
pub mod tool;
pub mod verify;
