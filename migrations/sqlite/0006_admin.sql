-- Administration pages (issue 8).
-- An applicant (a staff member or student) signs in as an operator linked to the person they
-- are, and applies for passes for their own vehicles only.
ALTER TABLE operators ADD COLUMN person_id INTEGER REFERENCES persons (id);
-- A visitor booking's category: visitor (default), contractor or official. A contractor's
-- booking needs the security office's approval after the department's; dept_approved_by
-- records the department's approval while it waits for the office (it stays pending meanwhile,
-- so no gate opens on it).
ALTER TABLE visitor_bookings ADD COLUMN category TEXT NOT NULL DEFAULT 'visitor';
ALTER TABLE visitor_bookings ADD COLUMN dept_approved_by TEXT;
