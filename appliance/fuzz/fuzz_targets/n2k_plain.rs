//! Any bytes as a plain capture: see `appliance_fuzz::check_capture`.
#![no_main]

use appliance::n2k::capture::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| appliance_fuzz::check_capture(data, Format::Plain));
