//! The setup wizard's answers about the engine, and what follows from them: the CX5106
//! gateway's DIP switches (`dip`).

pub mod dip;
