//! The newest value for a job queued behind others. While the job waits, a
//! newer value replaces the one it will take: a burst of changes (a drag on
//! the preview sends one a frame) costs one job, and that job does the last.

use std::sync::{Arc, Mutex};

/// Where a part leaves values for its waiting job.
pub(super) struct Latest<T> {
    /// The slot of the job queued last, if it may still take values.
    waiting: Option<Arc<Mutex<Option<T>>>>,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Latest { waiting: None }
    }
}

impl<T> Latest<T> {
    /// Gives `value` to the job still waiting and returns `None` (nothing
    /// to start), or returns the slot a new job takes its value from.
    pub fn offer(&mut self, value: T) -> Option<Slot<T>> {
        if let Some(waiting) = &self.waiting {
            let mut held = waiting.lock().unwrap_or_else(|e| e.into_inner());
            if held.is_some() {
                *held = Some(value);
                return None;
            }
        }
        let slot = Arc::new(Mutex::new(Some(value)));
        self.waiting = Some(slot.clone());
        Some(Slot(slot))
    }

    /// Other work was queued behind the waiting job: the next value goes to
    /// a new job, after that work, so the order asked is kept.
    pub fn close(&mut self) {
        self.waiting = None;
    }
}

/// A job's value, taken when it starts.
pub(super) struct Slot<T>(Arc<Mutex<Option<T>>>);

impl<T> Slot<T> {
    /// The newest value offered (from now on offers go to a new job).
    pub fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_job_takes_the_newest_value_and_a_started_one_none() {
        let mut latest = Latest::default();
        let first = latest.offer(1).expect("a job to start");
        assert!(latest.offer(2).is_none() && latest.offer(3).is_none(), "merged into the waiting job");
        assert_eq!(first.take(), Some(3), "the last wins");
        // It started: the next value needs a job of its own.
        let second = latest.offer(4).expect("a second job");
        assert_eq!(first.take(), None);
        // Something else was queued after it: a new job keeps the order.
        latest.close();
        let third = latest.offer(5).expect("a job after the other work");
        assert_eq!((second.take(), third.take()), (Some(4), Some(5)));
    }
}
