pub mod export;
pub mod lexicon;
pub mod map;
pub mod schema;
pub mod serve;
pub mod state;
