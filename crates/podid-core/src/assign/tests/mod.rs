//! Tests of the planner, the index and the ARM helpers.

mod flows;
mod names;
mod props;
mod scale;
mod support;
