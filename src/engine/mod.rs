//! The broker engine (placeholder API; being written).
pub mod event;
pub mod limits;

use std::collections::VecDeque;

use crate::clock::Millis;
use crate::rng::Rng;
use event::{Action, Input};
use limits::Limits;

pub struct Engine {
    limits: Limits,
    rng: Rng,
    actions: VecDeque<Action>,
}

impl Engine {
    pub fn new(limits: Limits, rng: Rng) -> Self {
        Self { limits, rng, actions: VecDeque::new() }
    }
    pub fn handle(&mut self, now: Millis, input: Input) {
        let _ = (now, input, &self.rng);
    }
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }
    pub fn next_deadline(&self) -> Option<Millis> {
        None
    }
    pub fn set_limits(&mut self, now: Millis, limits: Limits) {
        let _ = now;
        self.limits = limits;
    }
    /// True once every connection has closed after a `Shutdown` input.
    pub fn is_idle(&self) -> bool {
        true
    }
}
