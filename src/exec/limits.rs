//! The device limits every plan works within: workgroups per dispatch, and the loop
//! budget of adapters that stop long loops early (lavapipe, silently).

use crate::{Context, Error, Result};

impl Context {
    /// The most workgroups one dispatch dimension takes (at least 1).
    pub(crate) fn max_groups(&self) -> u64 {
        u64::from(self.limits().max_compute_workgroups_per_dimension).max(1)
    }

    /// Workgroups for `invocations` invocations, one per item, within the dispatch limit
    /// (the kernels' grid-stride loops take the rest) and at least one.
    pub(crate) fn groups(&self, invocations: u64) -> u32 {
        self.clamp_groups(invocations.div_ceil(u64::from(self.workgroup_size())))
    }

    /// `groups` workgroups within the dispatch limit, and at least one.
    pub(crate) fn clamp_groups(&self, groups: u64) -> u32 {
        groups.clamp(1, self.max_groups()) as u32
    }

    /// Loop iterations each invocation runs when `items` items of `per_item` iterations
    /// are spread over a grid-stride dispatch of the most workgroups, one invocation per
    /// item per step.
    pub(crate) fn grid_stride_iterations(&self, items: u64, per_item: u64) -> u64 {
        let invocations = u64::from(self.workgroup_size()) * self.max_groups();
        items.div_ceil(invocations) * per_item
    }

    /// Whether one invocation may run `per_invocation` loop iterations on this adapter.
    pub(crate) fn within_budget(&self, per_invocation: u64) -> bool {
        self.loop_budget()
            .is_none_or(|budget| per_invocation <= budget)
    }

    /// An error unless one invocation may run `per_invocation` loop iterations here:
    /// the one place the loop budget is enforced. `work` says what needs them.
    pub(crate) fn check_budget(&self, per_invocation: u64, work: &str) -> Result<()> {
        match self.loop_budget() {
            Some(budget) if per_invocation > budget => Err(Error::Unsupported(format!(
                "{work} need {per_invocation} loop iterations per invocation with at most {} \
                 workgroups; this adapter stops every loop after {budget} (lavapipe does); \
                 split the work into smaller calls, or run it on a GPU",
                self.max_groups()
            ))),
            _ => Ok(()),
        }
    }

    /// About how many workgroups a call should spread its reductions over: 2,048 on a
    /// GPU, two per core on a CPU adapter (where each workgroup is costly).
    pub(crate) fn target_groups(&self, gpu: u64) -> u64 {
        self.cpu_cores().map_or(gpu, |c| 2 * c as u64)
    }
}
