//! Operators as the pages name them: see [`crate::central::names`] (the API names them the
//! same way in its messages).

pub use crate::central::names::{Names, shown};
