//! "Nothing is lost silently" for events on their way up: a journal that rewinds its
//! sequence numbers ([`journal_rewind`]) and PostgreSQL going away under the centre mid-upload
//! ([`pg_outage`]).

mod journal_rewind;
mod pg_outage;
