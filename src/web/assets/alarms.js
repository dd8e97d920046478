// Alarms on every signed-in page (issue 20): filled in by the alarm work.
