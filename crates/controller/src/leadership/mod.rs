//! One active replica at a time: the Lease that elects it, the fence
//! that stops its writes once it may no longer be the leader, and the
//! terms of leadership the operator runs its controllers in.

pub mod fence;
pub mod leader;
pub mod term;
