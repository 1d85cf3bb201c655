//! Writes the log lines `crate::log` builds: one write to stdout per line, which Spin collects
//! as the component's log.

use super::io;
use crate::log::{self, LogLine};
use crate::pipeline::world::Warning;

pub fn write(mut line: String) {
    line.push('\n');
    let stdout = wasi::cli::stdout::get_stdout();
    for chunk in line.as_bytes().chunks(4096) {
        if stdout.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
}

pub fn line(line: &LogLine) {
    write(line.to_line());
}

/// A warning about the request `request_id`, written when it happens.
pub fn warn(request_id: &str, warning: &Warning) {
    let time = io::now_rfc3339();
    line(&log::warning(&time, request_id, warning));
}
