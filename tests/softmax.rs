//! The softmax family against the f64 reference: every strategy and both reductions
//! (subgroups and the shared-memory tree), row lengths from 1 to 1,048,576 with logits up
//! to 100, any axis, masked rows, in place, limits, and repeatability.

mod common;

use common::*;
use wgpu_activations::{Activation, BufferRegion, Context, Error, Op, RowView, Strategy};

fn softmax_ops() -> Vec<Activation> {
    Op::softmax_ops().map(Activation::example).collect()
}

/// Both reduction paths where this adapter has subgroups (lavapipe has), else the tree.
fn contexts() -> Vec<&'static Context> {
    // and the context that emulates a GPU's relaxed float semantics (with subgroups)
    if ctx().facts().subgroups {
        vec![ctx(), tree_ctx(), relaxed_ctx()]
    } else {
        vec![ctx(), relaxed_ctx()]
    }
}

/// The strategies that can serve this tensor on this adapter: every one, except Resident
/// for rows longer than it holds, and on lavapipe Lane for rows too long for one
/// invocation's loop budget (`encode_rows` refuses those; tested below).
fn strategies(ctx: &Context, shape: &[usize], dim: i64) -> Vec<Strategy> {
    let n = shape.iter().product();
    let view = RowView::new(shape, dim, n).unwrap();
    Strategy::ALL
        .into_iter()
        .filter(|&s| serves(ctx, s, view))
        .collect()
}

/// Logits uniform in [-scale, scale), the scale changing from row to row (1, 10, 100).
fn logits(rows: usize, axis: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut v = Vec::with_capacity(rows * axis);
    for r in 0..rows {
        let scale = [1.0, 10.0, 100.0][r % 3];
        v.extend((0..axis).map(|_| rng.uniform(-scale, scale)));
    }
    v
}

fn with_dim(a: &Activation, dim: i64) -> Activation {
    a.with("dim", dim as f32).unwrap()
}

/// Every op, strategy and reduction path on one tensor, checked against the reference.
fn check_all(input: &[f32], shape: &[usize], dim: i64, what: &str) {
    for ctx in contexts() {
        for a in softmax_ops() {
            let a = with_dim(&a, dim);
            for s in strategies(ctx, shape, dim) {
                let y = gpu_rows(ctx, &a, input, shape, s, false);
                let tag = format!("{what}, {s:?}, subgroups {}", ctx.facts().subgroups);
                assert_rows_close(&a, input, shape, &y, &tag);
            }
        }
    }
}

#[test]
fn row_lengths_from_1_to_65536() {
    for axis in [
        1usize, 2, 3, 7, 63, 64, 65, 255, 256, 257, 1023, 1024, 1025, 4097, 65_536,
    ] {
        // one row per logit scale (1, 10, 100), and more where rows are short
        let rows = (8192 / axis).clamp(3, 64);
        let x = logits(rows, axis, axis as u64);
        check_all(&x, &[rows, axis], -1, &format!("{rows} rows of {axis}"));
    }
}

#[test]
fn a_row_of_1048576() {
    let axis = 1 << 20;
    for (seed, scale) in [(1u64, 100.0f32), (2, 1.0)] {
        let mut rng = Rng::new(seed);
        let x: Vec<f32> = (0..axis).map(|_| rng.uniform(-scale, scale)).collect();
        check_all(&x, &[axis], -1, &format!("1M row, scale {scale}"));
    }
}

#[test]
fn more_rows_than_a_dispatch_dimension_holds() {
    // Lane and Workgroup on 70,000 real rows (the other workgroup strategies take tens
    // of seconds on lavapipe for that many; they run the same grid-stride loop, which the
    // small-device test below drives past its 4-workgroup limit).
    let rows = 70_000;
    let ctx = ctx();
    let x = logits(rows, 5, 11);
    for (shape, dim) in [([rows, 5], -1i64), ([5, rows], 0)] {
        for s in [Strategy::Lane, Strategy::Workgroup] {
            for a in softmax_ops() {
                let a = with_dim(&a, dim);
                if s == Strategy::Workgroup && a.op() != Op::Softmax {
                    continue;
                }
                let y = gpu_rows(ctx, &a, &x, &shape, s, false);
                assert_rows_close(&a, &x, &shape, &y, &format!("70,000 rows {s:?}"));
            }
        }
    }
}

#[test]
fn long_rows_past_the_loop_budget_are_refused_not_truncated() {
    let ctx = ctx();
    let Some(budget) = ctx.facts().loop_budget else {
        return; // a GPU runs every iteration
    };
    let axis = budget as usize; // Lane needs two passes over the row
    let view = RowView::new(&[axis], -1, axis).unwrap();
    assert!(!serves(ctx, Strategy::Lane, view));
    let x = logits(1, axis, 5);
    let softmax = Activation::example(Op::Softmax);
    let e = ctx
        .call(&softmax, &[axis])
        .strategy(Strategy::Lane)
        .run(&x)
        .unwrap_err();
    assert!(e.to_string().contains("loop iterations"), "{e}");
    // Auto picks another strategy
    assert_ne!(auto_strategy(ctx, view), Strategy::Lane);
    let y = ctx.call(&softmax, &[axis]).run(&x).unwrap();
    assert_rows_close(&softmax, &x, &[axis], &y, "auto past the budget");
}

#[test]
fn non_last_axes_of_rank_3_and_rank_4_tensors() {
    let x = logits(1, 3 * 5 * 7, 21);
    for dim in [0, 1, 2, -1, -2, -3] {
        check_all(&x, &[3, 5, 7], dim, &format!("[3, 5, 7] dim {dim}"));
    }
    let x = logits(1, 2 * 3 * 300 * 5, 22);
    for dim in [0, 1, 2, 3, -3] {
        check_all(
            &x,
            &[2, 3, 300, 5],
            dim,
            &format!("[2, 3, 300, 5] dim {dim}"),
        );
    }
    // a long strided axis
    let x = logits(1, 2 * 5000 * 3, 23);
    check_all(&x, &[2, 5000, 3], 1, "[2, 5000, 3] dim 1");
}

#[test]
fn rank_0_and_1_tensors() {
    check_all(&[3.5], &[], 0, "rank 0");
    check_all(&[3.5], &[], -1, "rank 0");
    check_all(&[1.0, 2.0, 3.0], &[3], 0, "rank 1");
}

#[test]
fn in_place_matches_out_of_place() {
    for ctx in contexts() {
        for a in softmax_ops() {
            for (shape, dim) in [(vec![50usize, 1000], -1i64), (vec![40, 30, 20], 1)] {
                let a = with_dim(&a, dim);
                let n: usize = shape.iter().product();
                let x = logits(1, n, 31);
                for s in strategies(ctx, &shape, dim) {
                    let out = gpu_rows(ctx, &a, &x, &shape, s, false);
                    let inplace = gpu_rows(ctx, &a, &x, &shape, s, true);
                    assert_rows_close(&a, &x, &shape, &inplace, &format!("in place {s:?}"));
                    assert_eq!(
                        bits(&out),
                        bits(&inplace),
                        "{a} {shape:?} {s:?}: in place differs"
                    );
                }
            }
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn regression_row_of_minus_400() {
    let x = [-400.0f32, -400.0, 0.0, -400.0, -400.0, -400.0, -400.0];
    for ctx in contexts() {
        for s in strategies(ctx, &[7], -1) {
            let softmax: Activation = "softmax".parse().unwrap();
            let y = gpu_rows(ctx, &softmax, &x, &[7], s, false);
            assert_eq!(y, [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0], "{s:?}");
            let log: Activation = "log_softmax".parse().unwrap();
            let y = gpu_rows(ctx, &log, &x, &[7], s, false);
            assert_eq!(y[2], 0.0, "{s:?}");
            assert!(
                y.iter().enumerate().all(|(i, &v)| i == 2 || v == -400.0),
                "{y:?}"
            );
        }
    }
    check_all(&x, &[7], -1, "regression row");
}

#[test]
fn maximum_in_the_last_position_and_rising_rows() {
    for axis in [2usize, 7, 256, 257, 5000, 100_000] {
        // a rising row: the running maximum changes at every element
        let rising: Vec<f32> = (0..axis).map(|j| j as f32 * (50.0 / axis as f32)).collect();
        check_all(&rising, &[axis], -1, &format!("rising {axis}"));
        // one large maximum at the end
        let mut last = logits(1, axis, axis as u64);
        last[axis - 1] = 120.0;
        check_all(&last, &[axis], -1, &format!("maximum last of {axis}"));
    }
}

#[test]
fn masked_rows_follow_pytorch() {
    let inf = f32::INFINITY;
    for axis in [4usize, 300, 5000] {
        let normal = logits(1, axis, 41);
        let all_masked = vec![-inf; axis];
        let half_masked: Vec<f32> = normal
            .iter()
            .enumerate()
            .map(|(j, &v)| if j % 2 == 0 { -inf } else { v })
            .collect();
        let mut one_inf = normal.clone();
        one_inf[axis / 3] = inf;
        let mut one_nan = normal.clone();
        one_nan[axis / 2] = f32::NAN;
        let mut all_pos_inf = normal.clone();
        all_pos_inf.iter_mut().for_each(|v| *v = inf);
        let rows = [
            &normal,
            &all_masked,
            &normal,
            &half_masked,
            &one_inf,
            &one_nan,
            &all_pos_inf,
            &normal,
        ];
        let x: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        let shape = [rows.len(), axis];
        check_all(&x, &shape, -1, &format!("masked rows of {axis}"));
        // and the same rows along a strided axis
        let mut t = vec![0.0; x.len()];
        for r in 0..rows.len() {
            for j in 0..axis {
                t[j * rows.len() + r] = x[r * axis + j];
            }
        }
        check_all(
            &t,
            &[axis, rows.len()],
            0,
            &format!("masked columns of {axis}"),
        );
        // what PyTorch gives, spelled out for softmax
        let softmax: Activation = "softmax".parse().unwrap();
        let y = gpu_rows(ctx(), &softmax, &x, &shape, Strategy::Auto, false);
        let row = |r: usize| &y[r * axis..(r + 1) * axis];
        assert!(row(1).iter().all(|v| v.is_nan()), "fully masked row");
        assert!(row(3).iter().step_by(2).all(|&v| v == 0.0), "masked half");
        assert!(row(4).iter().all(|v| v.is_nan()), "+inf row");
        assert!(row(5).iter().all(|v| v.is_nan()), "NaN row");
        assert!(row(6).iter().all(|v| v.is_nan()), "all +inf row");
        for r in [0, 2, 3, 7] {
            let sum: f64 = row(r).iter().map(|&v| f64::from(v)).sum();
            assert!((sum - 1.0).abs() < 1e-5, "row {r} sums to {sum}");
        }
    }
}

#[test]
fn every_finite_row_sums_to_one() {
    for ctx in contexts() {
        for axis in [3usize, 1000, 4097, 1 << 20] {
            let rows = ((1usize << 20) / axis).min(64);
            let x = logits(rows, axis, 51);
            for s in strategies(ctx, &[rows, axis], -1) {
                for name in ["softmax", "softmin"] {
                    let a: Activation = name.parse().unwrap();
                    let y = gpu_rows(ctx, &a, &x, &[rows, axis], s, false);
                    for (r, row) in y.chunks(axis).enumerate() {
                        let sum: f64 = row.iter().map(|&v| f64::from(v)).sum();
                        assert!(
                            (sum - 1.0).abs() <= 1e-5,
                            "{a} {s:?}: row {r} of {axis} sums to {sum}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn repeated_runs_are_bit_identical() {
    for ctx in contexts() {
        for axis in [1000usize, 70_000] {
            let rows = 8;
            let x = logits(rows, axis, 61);
            for s in strategies(ctx, &[rows, axis], -1) {
                let a: Activation = "log_softmax".parse().unwrap();
                let first = bits(&gpu_rows(ctx, &a, &x, &[rows, axis], s, false));
                for run in 0..12 {
                    let again = bits(&gpu_rows(ctx, &a, &x, &[rows, axis], s, false));
                    assert!(first == again, "{s:?} axis {axis}: run {run} differs");
                }
            }
        }
    }
}

#[test]
fn auto_picks_a_strategy_that_serves_the_shape() {
    let ctx = ctx();
    for (shape, dim) in [
        (vec![4096usize, 1], -1i64),
        (vec![1, 1 << 20], -1),
        (vec![8, 262_144], -1),
        (vec![512, 4096], -1),
        (vec![3, 1000, 5], 1),
    ] {
        let a = with_dim(&Activation::example(Op::Softmax), dim);
        let n: usize = shape.iter().product();
        let x = logits(1, n, 71);
        let y = gpu_rows(ctx, &a, &x, &shape, Strategy::Auto, false);
        assert_rows_close(&a, &x, &shape, &y, "auto");
        let view = RowView::new(&shape, dim, n).unwrap();
        assert_ne!(auto_strategy(ctx, view), Strategy::Auto);
    }
}

#[test]
fn convenience_api_runs_the_family() {
    let ctx = ctx();
    let x = logits(4, 6, 81);
    for a in softmax_ops() {
        // `run` normalises the slice as one row
        let y = ctx.call(&a, &[x.len()]).run(&x).unwrap();
        assert_rows_close(&a, &x, &[24], &y, "run");
        let a0 = with_dim(&a, 0);
        let y = ctx.call(&a0, &[4, 6]).run(&x).unwrap();
        assert_rows_close(&a0, &x, &[4, 6], &y, "run_shaped");
        let mut out = vec![0.0; x.len()];
        ctx.call(&a, &[x.len()]).run_into(&x, &mut out).unwrap();
        assert_rows_close(&a, &x, &[24], &out, "run_into");
    }
    // an elementwise op through the shaped API ignores the shape
    let relu: Activation = "relu".parse().unwrap();
    assert_eq!(
        ctx.call(&relu, &[2, 1]).run(&[-1.0, 2.0]).unwrap(),
        [0.0, 2.0]
    );
    assert!(ctx.call(&relu, &[3]).run(&[-1.0, 2.0]).is_err());
    assert!(ctx
        .call(&Activation::example(Op::Softmax), &[0])
        .run::<f32>(&[])
        .unwrap()
        .is_empty());
}

#[test]
fn bad_shapes_and_strategies_are_errors() {
    let ctx = ctx();
    let softmax = Activation::example(Op::Softmax);
    let x = vec![0.0f32; 12];
    let shape_err = |r: Result<Vec<f32>, Error>| match r {
        Err(Error::Shape { .. }) => {}
        other => panic!("expected a shape error, got {other:?}"),
    };
    shape_err(ctx.call(&with_dim(&softmax, 2), &[3, 4]).run(&x));
    shape_err(ctx.call(&with_dim(&softmax, -3), &[3, 4]).run(&x));
    shape_err(ctx.call(&softmax, &[5, 4]).run(&x));
    shape_err(ctx.call(&softmax, &[usize::MAX, 2]).run(&x));
    let e = ctx
        .call(&with_dim(&softmax, 1), &[x.len()])
        .run(&x)
        .unwrap_err();
    assert!(e.to_string().contains("dim 1 is out of range"), "{e}");
    // resident rows are bounded
    let long = vec![0.0f32; ctx.facts().resident_capacity + 1];
    let e = ctx
        .call(&softmax, &[long.len()])
        .strategy(Strategy::Resident)
        .run(&long)
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    // dim must be an integer
    assert!("softmax(dim=1.5)".parse::<Activation>().is_err());
    // encode_rows is for the softmax family only
    let buf = storage_buffer(ctx, &x);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let e = ctx
        .call(&"relu".parse().unwrap(), &[12])
        .strategy(Strategy::Lane)
        .encode(
            &mut encoder,
            BufferRegion::new(&buf),
            BufferRegion::new(&buf),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
}

#[test]
fn tensors_larger_than_a_binding_go_in_whole_slabs() {
    let ctx = small_device();
    for (shape, dim) in [(vec![300usize, 1000], -1i64), (vec![40, 100, 30], 1)] {
        let n: usize = shape.iter().product();
        let x = logits(1, n, 91);
        for a in softmax_ops() {
            let a = with_dim(&a, dim);
            for s in strategies(&ctx, &shape, dim) {
                let y = gpu_rows(&ctx, &a, &x, &shape, s, false);
                assert_rows_close(&a, &x, &shape, &y, &format!("small device {s:?}"));
            }
        }
    }
    // one slab larger than a binding cannot be split
    let x = vec![0.0f32; 20_000];
    let e = ctx
        .call(&Activation::example(Op::Softmax), &[20_000])
        .run(&x)
        .unwrap_err();
    assert!(e.to_string().contains("binding limit"), "{e}");
}

#[test]
fn offsets_of_any_multiple_of_4_bytes() {
    // rows of 128 move vec4s in Registers where both offsets are multiples of 4 elements
    let ctx = ctx();
    for (axis, in_at, out_at) in [
        (129usize, 0u64, 0u64),
        (129, 1, 3),
        (129, 64, 5),
        (129, 7, 300),
        (128, 4, 8),
        (128, 1, 4),
        (128, 8, 3),
    ] {
        let rows = 37usize;
        let n = rows * axis;
        let x = logits(rows, axis, 101);
        let mut src_data = vec![-7.0f32; n + in_at as usize];
        src_data[in_at as usize..].copy_from_slice(&x);
        let src = storage_buffer(ctx, &src_data);
        let dst = poisoned_buffer(ctx, n + out_at as usize + 4);
        for a in softmax_ops() {
            for s in strategies(ctx, &[rows, axis], -1) {
                let mut encoder = ctx.device().create_command_encoder(&Default::default());
                ctx.call(&a, &[rows, axis])
                    .strategy(s)
                    .encode(
                        &mut encoder,
                        BufferRegion::at(&src, in_at * 4),
                        BufferRegion::at(&dst, out_at * 4),
                    )
                    .unwrap();
                ctx.queue().submit([encoder.finish()]);
                let all = ctx
                    .download(BufferRegion::new(&dst), n as u64 + out_at + 4)
                    .unwrap();
                let what = format!("rows of {axis}, offsets {in_at}/{out_at} {s:?}");
                let (head, rest) = all.split_at(out_at as usize);
                let (y, tail) = rest.split_at(n);
                assert_rows_close(&a, &x, &[rows, axis], y, &what);
                let neighbours = head.iter().chain(tail);
                assert!(
                    neighbours.into_iter().all(|v| v.to_bits() == POISON_BITS),
                    "{what}: a neighbour of the output was written"
                );
            }
        }
    }
}

#[test]
fn same_buffer_disjoint_ranges() {
    let ctx = ctx();
    let (rows, axis) = (20usize, 300usize);
    let n = rows * axis;
    let x = logits(rows, axis, 111);
    let mut data = x.clone();
    data.extend(vec![f32::from_bits(POISON_BITS); n]);
    for s in strategies(ctx, &[rows, axis], -1) {
        let buf = storage_buffer(ctx, &data);
        let a = Activation::example(Op::LogSoftmax);
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        ctx.call(&a, &[rows, axis])
            .strategy(s)
            .encode(
                &mut encoder,
                BufferRegion::new(&buf),
                BufferRegion::at(&buf, n as u64 * 4),
            )
            .unwrap();
        ctx.queue().submit([encoder.finish()]);
        let all = ctx.download(BufferRegion::new(&buf), 2 * n as u64).unwrap();
        assert_eq!(bits(&all[..n]), bits(&x), "{s:?}: the input changed");
        assert_rows_close(
            &a,
            &x,
            &[rows, axis],
            &all[n..],
            &format!("same buffer {s:?}"),
        );
    }
}

#[test]
fn extremal_values_in_rows() {
    // +-0, +-inf, NaN, +-88.8, +-1e4, +-3.4e38 and denormals, one per row beside finite
    // neighbours, and all of them together in one row
    let specials = [
        0.0f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        88.8,
        -88.8,
        1e4,
        -1e4,
        3.4e38,
        -3.4e38,
        1e-40,
        -1e-45,
    ];
    let axis = 5;
    let mut x = Vec::new();
    for &s in &specials {
        x.extend([1.0, s, -2.0, 0.5, s]);
    }
    check_all(&x, &[specials.len(), axis], -1, "one special per row");
    check_all(&specials, &[specials.len()], -1, "every special in one row");
    let finite: Vec<f32> = specials.iter().copied().filter(|v| v.is_finite()).collect();
    check_all(
        &finite,
        &[finite.len()],
        -1,
        "the finite specials in one row",
    );
}

#[test]
fn one_subgroup_per_row_covers_every_row_and_lane_count() {
    // Rows fewer and more than a workgroup's subgroups, lengths below, at and past the
    // subgroup size, in place and not.
    let ctx = ctx();
    if !ctx.facts().subgroups {
        eprintln!("skipping: this adapter has no subgroups");
        return;
    }
    for (rows, axis) in [
        (1usize, 1usize),
        (3, 7),
        (37, 8),
        (33, 33),
        (100, 300),
        (5, 4097),
    ] {
        let x = logits(rows, axis, (rows * axis) as u64);
        let shape = [rows, axis];
        assert!(serves(
            ctx,
            Strategy::Subgroup,
            RowView::new(&shape, -1, rows * axis).unwrap()
        ));
        for a in softmax_ops() {
            for (mode, c) in both_contexts() {
                for in_place in [false, true] {
                    let y = gpu_rows(c, &a, &x, &shape, Strategy::Subgroup, in_place);
                    let what = format!("{mode}subgroup, in place {in_place}");
                    assert_rows_close(&a, &x, &shape, &y, &what);
                }
            }
        }
    }
    // no subgroups, no such strategy
    let view = RowView::new(&[4, 4], -1, 16).unwrap();
    assert!(!serves(tree_ctx(), Strategy::Subgroup, view));
    let softmax = Activation::example(Op::Softmax);
    let e = tree_ctx()
        .call(&softmax, &[4, 4])
        .strategy(Strategy::Subgroup)
        .run(&[0.0; 16])
        .unwrap_err();
    assert!(e.to_string().contains("Features::SUBGROUP"), "{e}");
}

#[test]
fn registers_holds_rows_at_every_segment_width() {
    // Row lengths that give every segment width Registers uses on each context (1 lane up
    // to the smallest subgroup, and the workgroup), on both its paths (vec4s: contiguous
    // rows of a multiple of 4; single elements otherwise), up to its capacity; row counts
    // that leave a workgroup's last segments past the last row; in place and not.
    for ctx in contexts() {
        let mut widths = std::collections::BTreeSet::new();
        let capacity = ctx.facts().registers_capacity;
        for axis in [
            1usize, 3, 4, 8, 13, 16, 29, 32, 60, 61, 64, 100, 125, 128, 256, 260, 512, 1023, 1024,
            1028, 2048, 4095, capacity,
        ] {
            let (lanes, _) = registers_shape(ctx, axis as u64).unwrap();
            widths.insert(lanes);
            let rows = (20_000 / axis).clamp(3, 37);
            let x = logits(rows, axis, 7 * axis as u64);
            let shape = [rows, axis];
            for a in softmax_ops() {
                for in_place in [false, true] {
                    let y = gpu_rows(ctx, &a, &x, &shape, Strategy::Registers, in_place);
                    let what = format!(
                        "registers, {lanes} lanes, subgroups {}, in place {in_place}",
                        ctx.facts().subgroups
                    );
                    assert_rows_close(&a, &x, &shape, &y, &what);
                }
            }
        }
        let wg = u64::from(ctx.facts().workgroup_size);
        let mut want: Vec<u64> = std::iter::successors(Some(1u64), |l| Some(l * 2))
            .take_while(|&l| l < wg && registers_shape(ctx, 4 * 2 * l).map(|s| s.0) == Some(l))
            .collect();
        want.push(wg);
        assert!(want.len() > 2, "{want:?}");
        for l in want {
            assert!(widths.contains(&l), "no row took {l} lanes: {widths:?}");
        }
        // One element past the capacity: refused, saying why.
        let long = capacity + 1;
        let view = RowView::new(&[long], -1, long).unwrap();
        assert!(!serves(ctx, Strategy::Registers, view));
        assert_eq!(registers_shape(ctx, long as u64), None);
        let e = ctx
            .call(&Activation::example(Op::Softmax), &[long])
            .strategy(Strategy::Registers)
            .run(&vec![0.0; long])
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("registers strategy holds rows of at most"),
            "{e}"
        );
    }
}

#[test]
fn registers_on_a_small_device() {
    // Many rows on a device of 4 workgroups per dispatch and 16K-element bindings: the
    // grid-stride loop, and several binding-sized pieces.
    let small = small_device();
    for (rows, axis) in [(2000usize, 32usize), (300, 1000), (9, 4096)] {
        let x = logits(rows, axis, 5 + axis as u64);
        for a in softmax_ops() {
            for s in [Strategy::Registers, Strategy::SplitRegisters] {
                // (SplitRegisters' one chunk per short row would pass lavapipe's loop
                // budget on 4 workgroups: refused, as tested elsewhere)
                let view = RowView::new(&[rows, axis], -1, rows * axis).unwrap();
                if s == Strategy::SplitRegisters && !serves(&small, s, view) {
                    continue;
                }
                let y = gpu_rows(&small, &a, &x, &[rows, axis], s, false);
                assert_rows_close(&a, &x, &[rows, axis], &y, &format!("{s:?}, small device"));
            }
        }
    }
}

#[test]
fn split_registers_chunks_rows_past_what_a_workgroup_holds() {
    // Rows of one chunk, of a chunk and one element, of several chunks with a short last
    // one; vec4s (lengths of a multiple of 4) and single elements, in place and not, on
    // every context, and strided along dim 0.
    for ctx in contexts() {
        let capacity = ctx.facts().registers_capacity;
        for axis in [capacity, capacity + 1, capacity + 4, 3 * capacity + 12] {
            let x = logits(3, axis, axis as u64);
            for a in softmax_ops() {
                for in_place in [false, true] {
                    let y = gpu_rows(ctx, &a, &x, &[3, axis], Strategy::SplitRegisters, in_place);
                    let what = format!("split registers, rows of {axis}, in place {in_place}");
                    assert_rows_close(&a, &x, &[3, axis], &y, &what);
                }
            }
        }
        let x = logits(5, capacity + 3, 3);
        let a = with_dim(&Activation::example(Op::Softmax), 0);
        let shape = [capacity + 3, 5];
        let y = gpu_rows(ctx, &a, &x, &shape, Strategy::SplitRegisters, false);
        assert_rows_close(&a, &x, &shape, &y, "split registers along dim 0");
    }
}

#[test]
fn registers_on_strided_axes() {
    // Rows along dim 0 (strided by the columns), up to 1,024 long held by 8 interleaved
    // rows per workgroup, longer ones by contiguous segments; column counts below, at and
    // past 8 (a workgroup's rows), along a middle axis too; in place and not; every context
    // and a device of 4 workgroups.
    for ctx in contexts() {
        for (axis, cols) in [
            (1usize, 5usize),
            (7, 8),
            (32, 37),
            (100, 3),
            (1024, 9),
            (1025, 4),
            (3000, 2),
        ] {
            let x = logits(cols, axis, (axis * cols) as u64);
            let shape = [axis, cols];
            for a in softmax_ops() {
                let a = with_dim(&a, 0);
                for in_place in [false, true] {
                    let y = gpu_rows(ctx, &a, &x, &shape, Strategy::Registers, in_place);
                    let what = format!(
                        "registers along dim 0, in place {in_place}, subgroups {}",
                        ctx.facts().subgroups
                    );
                    assert_rows_close(&a, &x, &shape, &y, &what);
                }
            }
        }
        let shape = [3usize, 300, 5];
        let x = logits(15, 300, 17);
        let a = with_dim(&Activation::example(Op::LogSoftmax), 1);
        let y = gpu_rows(ctx, &a, &x, &shape, Strategy::Registers, false);
        assert_rows_close(&a, &x, &shape, &y, "registers along dim 1");
    }
    let small = small_device();
    let x = logits(300, 50, 23);
    let a = with_dim(&Activation::example(Op::Softmax), 0);
    let y = gpu_rows(&small, &a, &x, &[50, 300], Strategy::Registers, false);
    assert_rows_close(
        &a,
        &x,
        &[50, 300],
        &y,
        "registers along dim 0, small device",
    );
}
