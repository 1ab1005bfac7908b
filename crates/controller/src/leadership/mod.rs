//! One active replica at a time: the Lease that elects it, and the fence
//! that stops its writes once it may no longer be the leader.

pub mod fence;
pub mod leader;
