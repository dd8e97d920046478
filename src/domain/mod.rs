//! The domain: plates, permits, schedules, blacklists — types shared by the gate and the centre.
