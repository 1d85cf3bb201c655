//! Phase marks for `scripts/bench phases`. Built with the `phase-marks` feature, the dispatcher
//! notes the monotonic clock at each phase of a request and writes the times (µs from the start)
//! as a `PH` line after its access-log line; the benchmark prints each phase's median on real
//! Spin. Without the feature every mark is an empty function the compiler removes.

#[cfg(feature = "phase-marks")]
mod marks {
    use std::cell::RefCell;

    thread_local! {
        static MARKS: RefCell<Vec<(&'static str, u64)>> = const { RefCell::new(Vec::new()) };
    }

    /// Notes that the request has reached `phase`.
    pub fn mark(phase: &'static str) {
        let now = wasi::clocks::monotonic_clock::now();
        MARKS.with(|marks| marks.borrow_mut().push((phase, now)));
    }

    /// `PH phase=µs ...`, and forgets the marks.
    pub fn take_line() -> Option<String> {
        let marks = MARKS.with(|marks| std::mem::take(&mut *marks.borrow_mut()));
        let start = marks.first()?.1;
        let mut line = String::from("PH");
        for (phase, at) in marks {
            line.push_str(&format!(" {phase}={}", (at - start) / 1000));
        }
        Some(line)
    }
}

#[cfg(not(feature = "phase-marks"))]
mod marks {
    #[inline(always)]
    pub fn mark(_phase: &'static str) {}

    #[inline(always)]
    pub fn take_line() -> Option<String> {
        None
    }
}

pub use marks::{mark, take_line};
