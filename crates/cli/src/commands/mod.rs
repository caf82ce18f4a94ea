pub mod export;
pub mod map;
pub mod sample;
pub mod schema;
pub mod validate;
