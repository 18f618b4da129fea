//! Kernel families: host code that plans chunks and dispatches for each.

pub mod backward;
pub mod dice;
pub mod dice_backward;
pub(crate) mod dispatch;
pub mod elementwise;
pub mod grouped;
pub mod grouped_backward;
pub mod prelu;
pub mod prelu_backward;
pub mod random;
pub mod softmax;
pub mod softmax_backward;
