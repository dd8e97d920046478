//! What the lane display (`crate::gate::display`) reads of a lane's live status: the runtime
//! implements the display's [`LaneView`] so the display never names the runtime (no import
//! cycle), and the runtime may start the lane screens and drive the signal light.

use super::status::LaneStatus;
use crate::gate::display::LaneView;
use crate::wire::journal::DecisionRecord;

impl LaneView for LaneStatus {
    fn decisions(&self) -> u64 {
        self.decisions
    }

    fn state(&self) -> &str {
        &self.state
    }

    fn last_decision(&self) -> Option<&DecisionRecord> {
        self.last_decision.as_ref()
    }
}
