-- Visitors without a queue (issue 21): a host is found by staff number or phone, and hosts and
-- visitors are told of what concerns them by e-mail.
-- persons.staff_no: the staff (工号) or student number the university knows the person by;
-- empty when not known. Not unique across categories in every university, so only indexed.
ALTER TABLE persons ADD COLUMN staff_no TEXT NOT NULL DEFAULT '';
ALTER TABLE persons ADD COLUMN email TEXT NOT NULL DEFAULT '';
CREATE INDEX persons_staff_no ON persons (staff_no);
CREATE INDEX persons_phone ON persons (phone);
-- The visitor's own e-mail for their booking's notices (optional; self-booked visits).
ALTER TABLE visitor_bookings ADD COLUMN visitor_email TEXT NOT NULL DEFAULT '';
