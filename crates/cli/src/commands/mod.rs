pub mod export;
pub mod lexicon;
pub mod map;
pub mod sample;
pub mod schema;
pub mod serve;
pub mod state;
pub mod validate;
